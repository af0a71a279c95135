import type { Readable } from 'node:stream';

/** What may be written: bytes, text, or a stream (streamed through, never held whole). */
export type Body = Uint8Array | string | Readable;

/** One storage backend behind a URI prefix (`s3://`, `file://`). */
export interface StorageHandler {
  /** The prefixes it serves, e.g. `['s3://']`. */
  readonly prefixes: readonly string[];
  exists(uri: string): Promise<boolean>;
  /** Object URIs under a prefix (a folder for files), every page of a listing. */
  list(uri: string): Promise<string[]>;
  read(uri: string): Promise<Buffer>;
  readStream(uri: string): Promise<Readable>;
  /** Writes the whole object or nothing: a failed write leaves no partial object behind. */
  write(uri: string, body: Body): Promise<void>;
  delete(uri: string): Promise<void>;
  close?(): Promise<void>;
}
