import type { Logger } from '@marie/core';
import pg from 'pg';

export interface ListenerOptions {
  connectionString: string;
  channels: readonly string[];
  /** A notification with a payload, on one of `channels`. */
  onNotification: (channel: string, payload: string) => void;
  /** Listening again after a lost connection (what was notified meanwhile is lost: look now). */
  onReconnect?: () => void;
  /** Names it in the warning of a lost connection ('cancellation listener'). */
  what: string;
  logger: Logger;
}

/**
 * LISTEN on a connection of its own, outside any pool (a pooled one held for good would leave the
 * pool one short). A lost connection (Postgres restarted) is opened again, backing off, until
 * `close()`. The job and DAG workers hear cancellations and wake-ups through it.
 */
export class Listener {
  readonly #o: ListenerOptions;
  #client?: pg.Client;
  #closed = false;

  constructor(options: ListenerOptions) {
    this.#o = options;
  }

  /** Listens; the first connection's failure is thrown, later ones are retried. */
  start(): Promise<void> {
    return this.#listen(0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => {});
  }

  async #listen(attempt: number): Promise<void> {
    const client = new pg.Client({ connectionString: this.#o.connectionString });
    let gone = false;
    const again = (err?: Error) => {
      if (gone) return;
      gone = true;
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#o.logger.warn({ err: err?.message }, `${this.#o.what} lost; listening again`);
      const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
      setTimeout(() => void this.#listen(attempt + 1).catch(() => {}), delay).unref();
    };
    client.on('error', again);
    client.on('end', () => again());
    client.on('notification', (n) => {
      if (n.payload) this.#o.onNotification(n.channel, n.payload);
    });
    try {
      await client.connect();
      await client.query(this.#o.channels.map((c) => `LISTEN ${c}`).join('; '));
    } catch (err) {
      if (attempt === 0) {
        gone = true;
        await client.end().catch(() => {});
        throw err;
      }
      again(err as Error);
      return;
    }
    if (this.#closed) {
      gone = true;
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    if (attempt > 0) this.#o.onReconnect?.();
  }
}
