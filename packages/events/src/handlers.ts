import { closeSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type Database,
  DocumentStore,
  Database as PgDatabase,
  type PsqlConfig,
} from '@marie/storage';
import type { EventMessage } from './event-message.js';

/** Where a batch of events goes. `deliver` resolves only once every event is confirmed. */
export interface EventHandler {
  readonly name: string;
  deliver(events: readonly EventMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Marie's native handler: JSON lines `{"ts", "event"}` (default `~/.cache/marie/events.json`). */
export class JsonlHandler implements EventHandler {
  readonly name = 'native';
  readonly path: string;
  #fd: number | undefined;

  constructor(path = join(homedir(), '.cache', 'marie', 'events.json')) {
    this.path = path;
  }

  async deliver(events: readonly EventMessage[]): Promise<void> {
    if (this.#fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.#fd = openSync(this.path, 'a');
    }
    // UTC for real (Marie writes local time with a Z); the event as an object, not a string.
    const lines = events
      .map((event) => JSON.stringify({ ts: new Date().toISOString(), event }))
      .join('\n');
    writeSync(this.#fd, `${lines}\n`);
    fdatasyncSync(this.#fd);
  }

  async close(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * Marie's Postgres handler: each event a row of the storage table (ref_id = job id, ref_type =
 * event name, tags `{action: "job", ttl: 2880}`), upserted by event id so that a redelivery
 * never duplicates a row. Errors are thrown (Marie swallows them and loses the event).
 */
export class PsqlHandler implements EventHandler {
  readonly name = 'psql';
  readonly config: PsqlConfig;
  #db: Promise<{ db: Database; store: DocumentStore }> | undefined;

  constructor(config: PsqlConfig) {
    this.config = config;
  }

  async deliver(events: readonly EventMessage[]): Promise<void> {
    const { store } = await this.#open();
    const groups = new Map<string, { refId: string; refType: string; docs: object[] }>();
    for (const e of events) {
      const refId = (e.jobid || 'none').slice(0, 64);
      const refType = e.event.slice(0, 64);
      const k = `${refId}\u0000${refType}`;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { refId, refType, docs: [] }));
      g.docs.push({ id: e.id, content: e, tags: { action: 'job', ttl: 2880 } });
    }
    for (const g of groups.values()) await store.store(g.refId, g.refType, 'content', g.docs);
  }

  async close(): Promise<void> {
    const opened = await this.#db?.catch(() => undefined);
    await opened?.db.close();
    this.#db = undefined;
  }

  #open(): Promise<{ db: Database; store: DocumentStore }> {
    this.#db ??= (async () => {
      const db = await PgDatabase.connect(this.config);
      const store = new DocumentStore(db, this.config.schema, this.config.defaultTable);
      await store.migrate();
      return { db, store };
    })().catch((err: unknown) => {
      this.#db = undefined;
      throw err;
    });
    return this.#db;
  }
}

export interface RabbitConfig {
  /** amqp:// or amqps:// URL; else built from the parts. */
  url?: string;
  hostname?: string;
  port?: number;
  username?: string;
  password?: string;
  /** `vhost`, or Marie's YAML key `virtualhost` (Marie reads only `vhost`). */
  vhost?: string;
  tls?: boolean;
  heartbeatS?: number;
}

/**
 * Marie's RabbitMQ topology through amqplib: a durable topic exchange `<api_key>.events`, a durable
 * queue `<api_key>.all-events` bound with `#`, the event name as routing key. Messages are
 * persistent; a batch is delivered once the broker confirms every message (publisher confirms).
 */
export class RabbitHandler implements EventHandler {
  readonly name = 'rabbitmq';
  readonly url: string;
  #conn:
    | Promise<{ conn: import('amqplib').ChannelModel; ch: import('amqplib').ConfirmChannel }>
    | undefined;
  readonly #declared = new Set<string>();

  constructor(config: RabbitConfig) {
    this.url = config.url ?? rabbitUrl(config);
  }

  async deliver(events: readonly EventMessage[]): Promise<void> {
    const { ch } = await this.#open();
    for (const e of events) {
      const exchange = `${e.api_key}.events`;
      if (!this.#declared.has(e.api_key)) {
        await ch.assertExchange(exchange, 'topic', { durable: true });
        const q = await ch.assertQueue(`${e.api_key}.all-events`, { durable: true });
        await ch.bindQueue(q.queue, exchange, '#');
        this.#declared.add(e.api_key);
      }
      ch.publish(exchange, e.event, Buffer.from(JSON.stringify(e)), {
        persistent: true,
        contentType: 'application/json',
        messageId: e.id,
        timestamp: e.timestamp,
        expiration: String(24 * 3600 * 1000),
      });
    }
    await ch.waitForConfirms();
  }

  async close(): Promise<void> {
    const c = await this.#conn?.catch(() => undefined);
    this.#conn = undefined;
    await c?.conn.close().catch(() => {});
  }

  #open() {
    this.#conn ??= (async () => {
      const amqp = await import('amqplib');
      const conn = await amqp.connect(this.url);
      const ch = await conn.createConfirmChannel();
      const drop = () => {
        this.#conn = undefined;
        this.#declared.clear();
      };
      // A broken connection is dropped; the next delivery connects again.
      conn.on('error', drop);
      conn.on('close', drop);
      ch.on('error', drop);
      ch.on('close', drop);
      return { conn, ch };
    })().catch((err: unknown) => {
      this.#conn = undefined;
      throw err;
    });
    return this.#conn;
  }
}

function rabbitUrl(c: RabbitConfig): string {
  const scheme = c.tls ? 'amqps' : 'amqp';
  const auth = c.username
    ? `${encodeURIComponent(c.username)}:${encodeURIComponent(c.password ?? '')}@`
    : '';
  const vhost = c.vhost ? `/${encodeURIComponent(c.vhost)}` : '';
  return `${scheme}://${auth}${c.hostname ?? 'localhost'}:${c.port ?? (c.tls ? 5671 : 5672)}${vhost}?heartbeat=${c.heartbeatS ?? 60}`;
}
