import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCode } from '@marie/core';
import { describe, StorageError } from '../errors.js';
import type { Body, StorageHandler } from './handler.js';

export interface FileHandlerOptions {
  /**
   * Folders paths must stay inside; relative paths resolve against the first. Default:
   * `$MARIE_STORAGE_ROOTS` (separated by `:`), else the working directory and the OS temp folder.
   */
  roots?: readonly string[];
}

/**
 * `file://` URIs and plain paths, confined to its roots: a path with a `..` segment, an absolute
 * path outside every root, and a symlink that leads out are refused with an error naming the path.
 */
export class FileHandler implements StorageHandler {
  readonly prefixes = ['file://'];
  readonly roots: readonly string[];
  #realRoots?: Promise<string[]>;

  constructor(options: FileHandlerOptions = {}) {
    const env = process.env.MARIE_STORAGE_ROOTS?.split(delimiter).filter(Boolean);
    const roots = options.roots?.length
      ? options.roots
      : env?.length
        ? env
        : [process.cwd(), tmpdir()];
    this.roots = roots.map((r) => resolve(r));
  }

  /** The checked local path of a URI or path (following symlinks for what exists). */
  async resolve(uri: string): Promise<string> {
    const raw = uri.startsWith('file://') ? fileUriPath(uri) : uri;
    if (raw === '') throw refused(uri, 'is empty');
    if (raw.split(/[\\/]+/).includes('..')) throw refused(uri, 'has a ".." segment');
    const path = isAbsolute(raw) ? resolve(raw) : resolve(this.roots[0]!, raw);
    if (!this.roots.some((r) => inside(path, r)))
      throw refused(uri, `is outside the storage roots (${this.roots.join(', ')})`);
    // Symlinks: the real path of the nearest existing ancestor must stay inside a real root.
    const real = await realOfExisting(path);
    const roots = await (this.#realRoots ??= Promise.all(this.roots.map((r) => realOfExisting(r))));
    if (!roots.some((r) => inside(real, r)))
      throw refused(uri, `leads outside the storage roots through a symlink (to ${real})`);
    return path;
  }

  async exists(uri: string): Promise<boolean> {
    const path = await this.resolve(uri);
    return stat(path).then(
      () => true,
      () => false,
    );
  }

  async list(uri: string): Promise<string[]> {
    const path = await this.resolve(uri);
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
        throw fail(uri, 'list', err);
      });
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) out.push(pathToFileURL(p).href);
      }
    };
    const s = await stat(path).catch(() => undefined);
    if (!s) return [];
    if (s.isFile()) return [pathToFileURL(path).href];
    await walk(path);
    return out;
  }

  async read(uri: string): Promise<Buffer> {
    const path = await this.resolve(uri);
    return readFile(path).catch((err: unknown) => {
      throw fail(uri, 'read', err);
    });
  }

  async readStream(uri: string): Promise<Readable> {
    const path = await this.resolve(uri);
    await stat(path).catch((err: unknown) => {
      throw fail(uri, 'read', err);
    });
    return createReadStream(path);
  }

  /** Written to a temporary file beside the target, then renamed: never half a file. */
  async write(uri: string, body: Body): Promise<void> {
    const path = await this.resolve(uri);
    await mkdir(dirname(path), { recursive: true });
    await this.resolve(uri); // the folders just made may not lead out either
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      const out = createWriteStream(tmp, { flags: 'wx' });
      if (typeof body === 'string' || body instanceof Uint8Array) {
        await new Promise<void>((ok, bad) => {
          out.on('error', bad);
          out.end(body, () => ok());
        });
      } else await pipeline(body, out);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw fail(uri, 'write', err);
    }
  }

  async delete(uri: string): Promise<void> {
    const path = await this.resolve(uri);
    await rm(path, { force: true, recursive: true }).catch((err: unknown) => {
      throw fail(uri, 'delete', err);
    });
  }
}

function fileUriPath(uri: string): string {
  // file:///abs/path is a URL; file://relative/path (Marie writes these) is a path.
  if (uri.startsWith('file:///')) return fileURLToPath(uri);
  return decodeURIComponent(uri.slice('file://'.length));
}

function inside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

async function realOfExisting(path: string): Promise<string> {
  let p = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(await realpath(p), ...rest.reverse());
    } catch {
      const parent = dirname(p);
      if (parent === p) return path;
      rest.push(basename(p));
      p = parent;
    }
  }
}

function refused(uri: string, why: string): StorageError {
  return new StorageError(`file path ${uri} ${why}`, { code: ErrorCode.PermissionDenied });
}

function fail(uri: string, what: string, err: unknown): StorageError {
  const code = (err as { code?: unknown }).code;
  return new StorageError(`${uri}: ${what} failed: ${describe(err)}`, {
    code: code === 'ENOENT' ? ErrorCode.NotFound : ErrorCode.Internal,
    ...(typeof code === 'string' ? { reason: code } : {}),
  });
}
