// bench/events: events/s through Toast (durable spool -> handler, confirms on) to JSONL, Postgres
// and RabbitMQ, beside a raw amqplib publish loop with confirms (windows of 100, then
// waitForConfirms) in the same run. Run: npm run bench:events
// (RABBITMQ_URL default amqp://guest:guest@127.0.0.1:5672; DATABASE_URL for Postgres)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEvent,
  type EventHandler,
  JsonlHandler,
  PsqlHandler,
  RabbitHandler,
  Toast,
} from '@marie/events';
import { parsePsqlConfig } from '@marie/storage';
import amqp from 'amqplib';
import pg from 'pg';

const N = Number(process.env.EVENTS ?? 5000);
const WINDOW = 100;
const RABBIT = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const ADMIN = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dir = mkdtempSync(join(tmpdir(), 'marie-bench-events-'));
const api = `bench${process.pid}`;
const make = () =>
  Array.from({ length: N }, (_, i) =>
    createEvent({
      event: 'bench.completed',
      api_key: api,
      jobid: `job-${i % 50}`,
      payload: { i, pages: 3 },
    }),
  );

async function throughToast(label: string, handler: EventHandler): Promise<number> {
  const toast = new Toast([{ handler }], { spoolDir: join(dir, label) });
  const events = make();
  const t = performance.now();
  for (let i = 0; i < N; i += WINDOW)
    await Promise.all(events.slice(i, i + WINDOW).map((e) => toast.notify(e)));
  if (!(await toast.drain(120_000))) throw new Error(`${label}: not drained`);
  const ms = performance.now() - t;
  await toast.close();
  return (N / ms) * 1000;
}

async function rawRabbit(): Promise<number> {
  const conn = await amqp.connect(RABBIT);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(`${api}.events`, 'topic', { durable: true });
  const events = make();
  const t = performance.now();
  for (let i = 0; i < N; i += WINDOW) {
    for (const e of events.slice(i, i + WINDOW))
      ch.publish(`${api}.events`, e.event, Buffer.from(JSON.stringify(e)), {
        persistent: true,
        contentType: 'application/json',
        messageId: e.id,
      });
    await ch.waitForConfirms();
  }
  const ms = performance.now() - t;
  await conn.close();
  return (N / ms) * 1000;
}

const admin = new pg.Client({ connectionString: ADMIN });
await admin.connect();
const db = `marie_bench_ev_${process.pid}`;
await admin.query(`CREATE DATABASE ${db}`);
const url = new URL(ADMIN);
url.pathname = `/${db}`;
try {
  const rows: [string, number][] = [];
  rows.push([
    'JSONL (fdatasync per batch)',
    await throughToast('jsonl', new JsonlHandler(join(dir, 'events.jsonl'))),
  ]);
  rows.push([
    'Postgres (upsert per batch)',
    await throughToast('psql', new PsqlHandler(parsePsqlConfig({ enabled: true, url: url.href }))),
  ]);
  const raw: number[] = [];
  const ours: number[] = [];
  for (let r = 0; r < 3; r++) {
    raw.push(await rawRabbit());
    ours.push(await throughToast(`rabbit${r}`, new RabbitHandler({ url: RABBIT })));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
  rows.push(['RabbitMQ via Toast (confirms)', median(ours)]);
  rows.push(['RabbitMQ raw amqplib (confirms)', median(raw)]);
  console.log(`${N} events, producers in windows of ${WINDOW}:`);
  for (const [label, rate] of rows)
    console.log(`  ${label.padEnd(34)} ${rate.toFixed(0).padStart(7)} events/s`);
  console.log(
    `  RabbitMQ ratio                     ${(median(ours) / median(raw)).toFixed(2)}x of raw (target >= 0.80)`,
  );
} finally {
  const conn = await amqp.connect(RABBIT);
  const ch = await conn.createChannel();
  await ch.deleteQueue(`${api}.all-events`);
  await ch.deleteExchange(`${api}.events`);
  await conn.close();
  await admin.query(`DROP DATABASE ${db} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
