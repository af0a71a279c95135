import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePsqlConfig } from '@marie/storage';
import amqp from 'amqplib';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { throwawayCluster } from '../../storage/test/support/postgres.js';
import { rabbitUrl } from '../test/support/rabbit.js';
import { startProxy } from '../test/support/tcp-proxy.js';
import { toastFromConfig } from './config.js';
import { createEvent } from './event-message.js';
import { JsonlHandler, PsqlHandler, RabbitHandler } from './handlers.js';
import { Spool } from './spool.js';
import { Toast } from './toast.js';

const RABBIT = await rabbitUrl();
const rabbitPort = Number(new URL(RABBIT).port || 5672);
const rabbitHost = new URL(RABBIT).hostname;
const viaProxy = (port: number) => {
  const u = new URL(RABBIT);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.href;
};
const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const events = (n: number, api_key = 'test', jobid = 'job-1') =>
  Array.from({ length: n }, (_, i) =>
    createEvent({ event: 'extract.started', jobid, api_key, payload: { i } }),
  );

describe('EventMessage', () => {
  it("has Marie's fields, the payload an object and the timestamp in seconds", () => {
    const e = createEvent({
      event: 'ocr.completed',
      jobid: 'j1',
      jobtag: 'invoice',
      status: 'OK',
      payload: { pages: 2 },
    });
    expect(Object.keys(e).sort()).toEqual([
      'api_key',
      'event',
      'id',
      'jobid',
      'jobtag',
      'payload',
      'source',
      'status',
      'timestamp',
    ]);
    expect(e.source).toBe('job://completed/j1');
    expect(e.payload).toEqual({ pages: 2 });
    expect(Math.abs(e.timestamp - Date.now() / 1000)).toBeLessThan(2);
    expect(Number.isInteger(e.timestamp)).toBe(true);
  });
});

describe('delivery', () => {
  it('the spool keeps what was not acknowledged across a reopen', async () => {
    const dir = tmp('marie-spool-');
    const s = new Spool(dir);
    const es = events(5);
    await s.add(es);
    await s.ack([es[0]!.id, es[1]!.id]);
    s.close();
    const again = new Spool(dir);
    expect(again.pending(10).map((e) => e.id)).toEqual(es.slice(2).map((e) => e.id));
    again.close();
  });

  it('writes JSON lines; a failing handler never blocks another; after max attempts the events are dead letters, counted', async () => {
    const dir = tmp('marie-toast-');
    const out = join(dir, 'events.jsonl');
    const notAFile = join(dir, 'a-folder');
    mkdirSync(notAFile);
    const broken = new JsonlHandler(notAFile); // EISDIR on every delivery: a real failure
    Object.defineProperty(broken, 'name', { value: 'broken' });
    const toast = new Toast(
      [
        { handler: new JsonlHandler(out) },
        { handler: broken, options: { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 10 } },
      ],
      { spoolDir: join(dir, 'spool') },
    );
    for (const e of events(20)) await toast.notify(e);
    await toast.drain(5000);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(20);
    expect(lines[0].event.payload).toEqual({ i: 0 });
    expect(lines[0].ts).toMatch(/Z$/);
    const stats = toast.stats();
    expect(stats.native).toMatchObject({ delivered: 20, pending: 0 });
    expect(stats.broken).toMatchObject({ delivered: 0, deadLettered: 20, pending: 0 });
    const dead = readFileSync(join(dir, 'spool', 'broken.dead-letter.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(dead).toHaveLength(20);
    expect(JSON.parse(dead[0]!).reason).toMatch(/3 attempts failed; last: .*EISDIR/);
    await toast.close();
  });

  it('a full queue dead-letters the new event and the producer goes on (never hangs)', async () => {
    const dir = tmp('marie-full-');
    const proxy = await startProxy(rabbitPort, rabbitHost);
    await proxy.cut(); // nowhere to deliver: the queue fills
    const toast = new Toast(
      [
        {
          handler: new RabbitHandler({ url: viaProxy(proxy.port) }),
          options: { maxQueue: 5, dropIfFull: true },
        },
      ],
      { spoolDir: dir },
    );
    const results = [];
    for (const e of events(8)) results.push(await toast.notify(e));
    expect(results.filter((r) => r.spooled.length)).toHaveLength(5);
    expect(results.filter((r) => r.deadLettered.length)).toHaveLength(3);
    const waiting = new Toast(
      [
        {
          handler: new JsonlHandler(join(dir, 'x', 'y')),
          options: { maxQueue: 0, enqueueTimeoutMs: 100 },
        },
      ],
      { spoolDir: join(dir, 'w') },
    );
    const t = Date.now();
    expect((await waiting.notify(events(1)[0]!)).deadLettered).toEqual(['native']);
    expect(Date.now() - t).toBeLessThan(1000);
    await toast.close();
    await waiting.close();
    await proxy.close();
  });

  it('reads the toast: config (native, psql, rabbitmq with virtualhost) and names a bad key', () => {
    const dir = tmp('marie-cfg-');
    const t = toastFromConfig(
      {
        native: { path: join(dir, 'e.json') },
        rabbitmq: {
          enabled: true,
          hostname: '127.0.0.1',
          username: 'guest',
          password: 'guest',
          virtualhost: 'docs',
          retry: { max_attempts: 5 },
        },
        psql: { enabled: false },
      },
      { spoolDir: join(dir, 's') },
    );
    expect(t.handlers).toEqual(['native', 'rabbitmq']);
    void t.close();
    expect(() => toastFromConfig({ kafka: {} }, { spoolDir: dir })).toThrow(
      'toast.kafka: unknown key',
    );
    expect(() =>
      toastFromConfig(
        { rabbitmq: { enabled: true, queue: { size: 1 } } },
        { spoolDir: join(dir, 'b') },
      ),
    ).toThrow('toast.rabbitmq.queue.size: unknown key');
    expect(
      new RabbitHandler({ hostname: 'h', username: 'u', password: 'p', vhost: 'docs' }).url,
    ).toBe('amqp://u:p@h:5672/docs?heartbeat=60');
  });
});

describe('RabbitMQ through a 5 s outage', () => {
  it('1,000 events across the cut: every one delivered at least once, none lost; duplicates counted', async () => {
    const api = `t${process.pid}${Date.now()}`;
    const proxy = await startProxy(rabbitPort, rabbitHost);
    const dir = tmp('marie-rabbit-');
    const toast = new Toast(
      [
        {
          handler: new RabbitHandler({ url: viaProxy(proxy.port) }),
          options: { backoffBaseMs: 100, backoffMaxMs: 500 },
        },
      ],
      { spoolDir: dir },
    );
    const consumer = await amqp.connect(RABBIT);
    const ch = await consumer.createChannel();
    await ch.assertExchange(`${api}.events`, 'topic', { durable: true });
    await ch.assertQueue(`${api}.all-events`, { durable: true });
    await ch.bindQueue(`${api}.all-events`, `${api}.events`, '#');
    const seen = new Map<string, number>();
    await ch.consume(`${api}.all-events`, (m) => {
      if (!m) return;
      const e = JSON.parse(m.content.toString());
      seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
      ch.ack(m);
    });
    const all = events(1000, api);
    const t0 = Date.now();
    for (const [i, e] of all.entries()) {
      if (i === 300) {
        await proxy.cut();
        setTimeout(() => void proxy.restore(), 5000);
      }
      await toast.notify(e);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 40));
    }
    expect(await toast.drain(30_000)).toBe(true);
    const end = Date.now() + 10_000;
    while (seen.size < 1000 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const duplicates = [...seen.values()].reduce((a, n) => a + n - 1, 0);
    console.log(
      `rabbitmq outage: 1000 events in ${Date.now() - t0} ms across a 5 s cut, ${seen.size} delivered, ${duplicates} duplicates, ${toast.stats().rabbitmq!.retries} retries, ${proxy.connections} connections`,
    );
    expect(all.filter((e) => !seen.has(e.id))).toEqual([]);
    expect(toast.stats().rabbitmq).toMatchObject({
      delivered: expect.any(Number),
      deadLettered: 0,
      pending: 0,
    });
    expect(toast.stats().rabbitmq!.retries).toBeGreaterThan(0);
    await ch.deleteQueue(`${api}.all-events`);
    await ch.deleteExchange(`${api}.events`);
    await consumer.close();
    await toast.close();
    await proxy.close();
  }, 90_000);

  it('a process killed with events in its spool delivers them after its restart', async () => {
    const api = `k${process.pid}${Date.now()}`;
    const proxy = await startProxy(rabbitPort, rabbitHost);
    await proxy.cut(); // the broker is unreachable while the first process runs
    const dir = tmp('marie-kill-');
    const script = `
      import { RabbitHandler, Toast, createEvent } from '@marie/events';
      const toast = new Toast([{ handler: new RabbitHandler({ url: process.env.URL }), options: { backoffBaseMs: 50, backoffMaxMs: 200 } }], { spoolDir: process.env.DIR });
      if (process.env.SEND) {
        for (let i = 0; i < 200; i++) await toast.notify(createEvent({ event: 'x.started', api_key: process.env.API, payload: { i } }));
        console.log('spooled');
        setInterval(() => {}, 1000);
      } else {
        console.log(await toast.drain(20000) ? 'drained' : 'not drained');
        await toast.close();
      }`;
    const run = (env: Record<string, string>) =>
      spawn(
        process.execPath,
        ['--conditions=@marie/source', '--import', 'tsx', '--input-type=module', '-e', script],
        {
          cwd: import.meta.dirname,
          env: { ...process.env, URL: viaProxy(proxy.port), DIR: dir, API: api, ...env },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
    const first = run({ SEND: '1' });
    await new Promise<void>((resolve) =>
      first.stdout.on('data', (d) => String(d).includes('spooled') && resolve()),
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.on('exit', r));
    const consumer = await amqp.connect(RABBIT);
    const ch = await consumer.createChannel();
    await ch.assertExchange(`${api}.events`, 'topic', { durable: true });
    await ch.assertQueue(`${api}.all-events`, { durable: true });
    await ch.bindQueue(`${api}.all-events`, `${api}.events`, '#');
    await proxy.restore();
    const second = run({});
    let out = '';
    second.stdout.on('data', (d) => (out += d));
    await new Promise((r) => second.on('exit', r));
    expect(out.trim()).toBe('drained');
    const q = await ch.checkQueue(`${api}.all-events`);
    expect(q.messageCount).toBe(200);
    await ch.deleteQueue(`${api}.all-events`);
    await ch.deleteExchange(`${api}.events`);
    await consumer.close();
    await proxy.close();
  }, 60_000);
});

describe('Postgres through a restart', () => {
  it('1,000 events across a restart of the server: every one stored once', async () => {
    const cluster = await throwawayCluster();
    const dir = tmp('marie-pgev-');
    const toast = new Toast(
      [
        {
          handler: new PsqlHandler(
            parsePsqlConfig({ enabled: true, url: cluster.url, max_attempts: 2 }),
          ),
          options: { backoffBaseMs: 50, backoffMaxMs: 300 },
        },
      ],
      { spoolDir: dir },
    );
    let restart: Promise<void> | undefined;
    const all = events(1000, 'pg', 'job-pg');
    for (const [i, e] of all.entries()) {
      if (i === 400) restart = cluster.restart('fast');
      await toast.notify(e);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await restart;
    expect(await toast.drain(30_000)).toBe(true);
    const c = new pg.Client({ connectionString: cluster.url });
    await c.connect();
    const rows = await c.query(
      `SELECT count(*)::int AS n, count(DISTINCT doc_id)::int AS ids FROM public.store WHERE ref_type = 'extract.started'`,
    );
    await c.end();
    console.log(
      `postgres restart: 1000 events, ${rows.rows[0].n} rows, ${toast.stats().psql!.retries} retries`,
    );
    expect(rows.rows[0]).toEqual({ n: 1000, ids: 1000 });
    await toast.close();
    cluster.destroy();
  }, 90_000);
});
