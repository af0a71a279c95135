import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { acquirePidLock } from '@marie/core';
import type { EventMessage } from './event-message.js';

/**
 * A handler's outbox on disk: every event is written (and fdatasync'ed) here before `notify`
 * resolves, and stays until the handler has it confirmed. A process that dies, even by SIGKILL,
 * leaves its undelivered events for the next one on the same folder. One log file of
 * `{"e": event}` and `{"a": [ids]}` lines, compacted once most of it is acknowledged.
 */
export class Spool {
  readonly dir: string;
  readonly #file: string;
  readonly #pending = new Map<string, EventMessage>();
  #fd: number;
  #lines = 0;
  #buffer: string[] = [];
  #flushing: Promise<void> | undefined;
  readonly #unlock: () => void;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.#unlock = lock(dir);
    this.#file = join(dir, 'spool.jsonl');
    let text = '';
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch {}
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: { e?: EventMessage; a?: string[] };
      try {
        rec = JSON.parse(line);
      } catch {
        continue; // a torn last line from a crash: its event was never confirmed to the producer
      }
      if (rec.e) this.#pending.set(rec.e.id, rec.e);
      for (const id of rec.a ?? []) this.#pending.delete(id);
    }
    this.#fd = this.#rewrite();
  }

  /** Events not yet acknowledged, oldest first. */
  get size(): number {
    return this.#pending.size;
  }

  pending(limit: number): EventMessage[] {
    const out: EventMessage[] = [];
    for (const e of this.#pending.values()) {
      if (out.length >= limit) break;
      out.push(e);
    }
    return out;
  }

  /** Appends events; resolves once they are on disk (one write and fdatasync per batch of callers). */
  add(events: readonly EventMessage[]): Promise<void> {
    for (const e of events) {
      this.#pending.set(e.id, e);
      this.#buffer.push(JSON.stringify({ e }));
    }
    return this.#flush();
  }

  /** Marks events delivered (or dead-lettered). */
  ack(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#pending.delete(id);
    this.#buffer.push(JSON.stringify({ a: ids }));
    return this.#flush().then(() => {
      if (this.#lines > 10_000 && this.#pending.size < this.#lines / 4) {
        closeSync(this.#fd);
        this.#fd = this.#rewrite();
      }
    });
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {}
    this.#unlock();
  }

  #flush(): Promise<void> {
    this.#flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const lines = this.#buffer;
        this.#buffer = [];
        this.#flushing = undefined;
        try {
          if (lines.length) {
            writeSync(this.#fd, `${lines.join('\n')}\n`);
            fdatasyncSync(this.#fd);
            this.#lines += lines.length;
          }
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    return this.#flushing;
  }

  /** Writes the pending events alone to a new log (atomically) and opens it for appending. */
  #rewrite(): number {
    const tmp = `${this.#file}.tmp`;
    const body = [...this.#pending.values()].map((e) => JSON.stringify({ e })).join('\n');
    writeFileSync(tmp, body ? `${body}\n` : '');
    const fd = openSync(tmp, 'r+');
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.#file);
    this.#lines = this.#pending.size;
    return openSync(this.#file, 'a');
  }
}

function lock(dir: string): () => void {
  return acquirePidLock(
    join(dir, 'spool.lock'),
    (owner) => `event spool ${dir} is in use by process ${owner}`,
  );
}
