import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode } from '@marie/core';
import { describe, StorageError } from '../errors.js';
import { FileHandler, type FileHandlerOptions } from './file-handler.js';
import type { Body, StorageHandler } from './handler.js';
import { type S3Config, S3Handler } from './s3-handler.js';

export interface StorageManagerOptions {
  /** Local file roots (default: the working directory). */
  file?: FileHandlerOptions;
  /** An `s3://` handler; none unless given (local files never need S3). */
  s3?: S3Config;
}

/**
 * Marie's StorageManager: one set of verbs over every backend, the handler chosen by the URI's
 * prefix (longest first); plain paths and `file://` go to the file handler.
 */
export class StorageManager {
  readonly #handlers: { prefix: string; handler: StorageHandler }[] = [];
  readonly files: FileHandler;

  constructor(options: StorageManagerOptions = {}) {
    this.files = new FileHandler(options.file);
    this.register(this.files);
    if (options.s3) this.register(new S3Handler(options.s3));
  }

  /** Adds a handler for its prefixes; a longer prefix wins over a shorter one. */
  register(handler: StorageHandler): this {
    for (const prefix of handler.prefixes) this.#handlers.push({ prefix, handler });
    this.#handlers.sort((a, b) => b.prefix.length - a.prefix.length);
    return this;
  }

  /** Whether a handler serves this URI. */
  canHandle(uri: string): boolean {
    return this.#find(uri) !== undefined;
  }

  handlerFor(uri: string): StorageHandler {
    const h = this.#find(uri);
    if (!h) {
      const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1];
      throw new StorageError(
        `${uri}: no storage handler for ${scheme ? `${scheme}://` : 'this URI'} (have: ${this.#handlers.map((x) => x.prefix).join(', ')}, plain paths)`,
        { code: ErrorCode.InvalidArgument },
      );
    }
    return h;
  }

  async exists(uri: string): Promise<boolean> {
    return this.handlerFor(uri).exists(uri);
  }
  async list(uri: string): Promise<string[]> {
    return this.handlerFor(uri).list(uri);
  }
  async read(uri: string): Promise<Buffer> {
    return this.handlerFor(uri).read(uri);
  }
  async readStream(uri: string): Promise<Readable> {
    return this.handlerFor(uri).readStream(uri);
  }
  async write(uri: string, body: Body): Promise<void> {
    return this.handlerFor(uri).write(uri, body);
  }
  async delete(uri: string): Promise<void> {
    return this.handlerFor(uri).delete(uri);
  }

  /** Streams an object into a local file (any path: the caller's own), complete or not at all. */
  async readToFile(uri: string, path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
    try {
      await pipeline(await this.readStream(uri), createWriteStream(tmp));
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof StorageError) throw err;
      throw new StorageError(`${uri}: read to ${path} failed: ${describe(err)}`);
    }
  }

  /** Copies an object, streaming across backends (file -> s3, s3 -> file, s3 -> s3). */
  async copy(from: string, to: string): Promise<void> {
    const source = await this.readStream(from);
    await this.write(to, source);
  }

  async close(): Promise<void> {
    await Promise.all([...new Set(this.#handlers.map((h) => h.handler))].map((h) => h.close?.()));
  }

  #find(uri: string): StorageHandler | undefined {
    for (const { prefix, handler } of this.#handlers) if (uri.startsWith(prefix)) return handler;
    // A plain path (no scheme) is a local file.
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return this.files;
    return undefined;
  }
}
