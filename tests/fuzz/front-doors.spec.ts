// Every front door of a running Flow, fuzzed: 10,000 generated bad inputs each on HTTP JSON,
// WebSocket `json`, WebSocket `bytes`, gRPC and the job API. No crash (the processes live and
// still answer right), no hang (every input is answered, refused or closed within 10 s), only the
// answers each protocol defines, and memory bounded (the gateway's and the executor's RSS before
// and after are printed). Inputs come from a seeded generator: FUZZ_SEED=<n> replays a run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Client } from '@marie/client';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type TestDatabase, testDatabase } from '../../packages/storage/test/support/postgres.js';
import { Fuzzer, rssMb } from '../support/fuzz.js';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';
import { PROTO_SEEDS } from './seeds.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
// FUZZ_ONLY=<i> replays one input of each door (the index a failure names).
const ONLY = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY);
const N = ONLY === undefined ? 10_000 : 1;
/** Input i of a door comes from its own generator: the same input whatever ran before it. */
const fuzzerFor = (door: number, i: number) =>
  new Fuzzer((SEED * 31 + door) * 100_003 + (ONLY ?? i));
const HANG_MS = 10_000;
const HEAP_CAP_MB = 256;
let db: TestDatabase;
let dir: string;
let flow: MarieProcess;
let grpcAddress: string;
let httpAddress: string;
let wsAddress: string;
let executorPid: number;
const rss: Record<string, { gateway: number; executor: number }> = {};

beforeAll(async () => {
  db = await testDatabase('marie_fuzz');
  dir = mkdtempSync(join(tmpdir(), 'marie-fuzz-'));
  writeFileSync(
    join(dir, 'flow.yml'),
    `jtype: Flow
with:
  protocol: [grpc, http, websocket]
  port: [0, 0, 0]
  host: 127.0.0.1
executors:
  - name: ref
    uses: ${join(ROOT, 'tests/conformance/reference.yml')}
jobs:
  database: "${db.url}"
  queues: {}
`,
  );
  // Both processes run with V8's old space capped: were memory to grow with the inputs (a leak),
  // they would die of it here instead of growing past what a container would allow.
  flow = runMarie(['flow', '--uses', join(dir, 'flow.yml')], {
    env: { MARIE_LOG_LEVEL: 'fatal', NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}` },
  });
  [grpcAddress, httpAddress, wsAddress] = (await waitReady(flow, 3, 60_000)).map((l) =>
    l.slice('ready '.length),
  ) as [string, string, string];
  executorPid = Number(
    execFileSync('pgrep', ['-P', String(flow.child.pid)])
      .toString()
      .trim(),
  );
  rss.start = { gateway: rssMb(flow.child.pid!), executor: rssMb(executorPid) };
}, 90_000);

afterAll(async () => {
  if (flow && flow.child.exitCode === null) flow.child.kill('SIGKILL');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
  console.log(`front-door fuzz seed ${SEED}: RSS MB ${JSON.stringify(rss)}`);
});

/** What one input was (shown when its outcome is not allowed) and what came of it. */
interface Tried {
  input: string;
  outcome: string;
}

/** The first input of each outcome, to show what a failure was. */
const examples = new Map<string, string>();

const show = (input: string | Uint8Array) =>
  typeof input === 'string'
    ? input.length > 300
      ? `${input.slice(0, 300)}... (${input.length} chars)`
      : input
    : `bytes ${Buffer.from(input).toString('base64').slice(0, 300)}`;

/** Runs `n` inputs, `concurrency` at a time, counting outcomes; a hang is an outcome too. */
async function drive(
  n: number,
  concurrency: number,
  one: (i: number, lane: number, tried: Tried) => Promise<string>,
): Promise<Record<string, number>> {
  const tally: Record<string, number> = {};
  let next = 0;
  const lane = async (_: unknown, lane: number) => {
    while (next < n) {
      const i = next++;
      const tried: Tried = { input: '', outcome: '' };
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        one(i, lane, tried).catch((err: Error) => `threw ${err.message.slice(0, 60)}`),
        new Promise<string>((r) => {
          timer = setTimeout(() => r('hang'), HANG_MS);
        }),
      ]);
      clearTimeout(timer);
      tally[outcome] = (tally[outcome] ?? 0) + 1;
      if (!examples.has(outcome)) examples.set(outcome, `FUZZ_ONLY=${ONLY ?? i}: ${tried.input}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return tally;
}

/** Outcomes other than those allowed, each with its count and the first input that gave it. */
function unexpected(tally: Record<string, number>, allowed: RegExp): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tally)
      .filter(([k]) => !allowed.test(k))
      .map(([k, n]) => [k, `${n}x, e.g. ${examples.get(k)}`]),
  );
}

/** After each door: both processes alive, healthy, and still answering correctly. */
async function stillServing(door: string): Promise<void> {
  expect(flow.child.exitCode, `${door}: gateway exited`).toBeNull();
  process.kill(executorPid, 0); // throws if the executor died
  rss[door] = { gateway: rssMb(flow.child.pid!), executor: rssMb(executorPid) };
  // Bounded: within the heap cap, RSS rises while V8's heap grows to what the biggest inputs
  // need and stays there (V8 keeps its pages); the processes are alive (checked below).
  for (const [name, mb] of Object.entries(rss[door]!))
    expect(mb, `${door}: ${name} RSS`).toBeLessThan(HEAP_CAP_MB + 350);
  const client = new Client({ host: grpcAddress });
  expect(await client.isReady()).toBe(true);
  const docs = await client.post('/upper', [{ text: `after ${door}` }]);
  expect(docs[0]!.text).toBe(`AFTER ${door}`.toUpperCase());
  client.close();
}

const JSON_SEEDS = [
  { data: [{ text: 'hello', tags: { a: 1 } }], parameters: { x: 1 }, header: { request_id: 'r1' } },
  {
    data: [
      {
        tensor: [
          [1, 2],
          [3, 4],
        ],
        note: 'n',
      },
    ],
    exec_endpoint: '/tensor',
  },
  { data: { text: 'single' }, parameters: { ref: [1, 'a'], delay: 0 }, target_executor: 'ref' },
  { data: [{ text: 'a' }, { text: 'b' }], exec_endpoint: '/length' },
];
const PATHS = ['/post', '/upper', '/tensor', '/length', '/default', '/words'];

describe(`front doors fuzzed, ${N} inputs each (seed ${SEED})`, () => {
  it('HTTP JSON: 200, 400, 404, 413, 415, 422, or an executor error 500 with its exception', async () => {
    const agent = new Agent({ connections: 16 });
    const tally = await drive(N, 16, async (i, _lane, tried) => {
      const f = fuzzerFor(0, i);
      const kind = f.random();
      const path = f.pick(PATHS);
      let body: string | Buffer;
      let type = 'application/json';
      if (kind < 0.7) body = JSON.stringify(f.mutateJson(f.pick(JSON_SEEDS))) ?? '';
      else if (kind < 0.9) body = f.mutateText(JSON.stringify(f.pick(JSON_SEEDS)));
      else {
        body = Buffer.from(f.mutateBytes(f.pick(PROTO_SEEDS)));
        type = f.pick(['application/json', 'application/octet-stream', 'text/plain', '']);
      }
      tried.input = `POST ${path} ${type}: ${show(body)}`;
      const res = await request(`${httpAddress}${path}`, {
        method: 'POST',
        dispatcher: agent,
        body,
        headers: type ? { 'content-type': type } : {},
      });
      const text = await res.body.text();
      if (res.statusCode === 500)
        return JSON.parse(text).exception ? '500 executor error' : `500 ${text.slice(0, 60)}`;
      return String(res.statusCode);
    });
    await agent.close();
    console.log(`HTTP JSON: ${JSON.stringify(tally)}`);
    expect(unexpected(tally, /^(200|400|404|413|415|422|500 executor error)$/)).toEqual({});
    await stillServing('http');
  }, 240_000);

  it('gRPC: every message answered OK (with its status) or refused INVALID_ARGUMENT / RESOURCE_EXHAUSTED', async () => {
    const target = grpcAddress.replace('grpc://', '');
    const clients = Array.from(
      { length: 4 },
      () => new grpc.Client(target, grpc.credentials.createInsecure()),
    );
    const tally = await drive(N, 32, (i, _lane, tried) => {
      const f = fuzzerFor(1, i);
      const bytes = f.chance(0.8)
        ? f.mutateBytes(f.pick(PROTO_SEEDS))
        : Buffer.from(Array.from({ length: f.int(512) }, () => f.int(256)));
      const path = f.chance(0.8)
        ? '/jina.JinaSingleDataRequestRPC/process_single_data'
        : '/jina.JinaRPC/Call';
      tried.input = `${path}: ${show(bytes)}`;
      return new Promise<string>((resolve) => {
        const client = clients[i % clients.length]!;
        if (path.endsWith('Call')) {
          const call = client.makeBidiStreamRequest(
            path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            new grpc.Metadata(),
            { deadline: Date.now() + HANG_MS },
          );
          call.on('data', () => resolve('OK'));
          call.on('error', (err: grpc.ServiceError) => resolve(grpc.status[err.code]!));
          call.on('end', () => resolve('OK'));
          call.write(Buffer.from(bytes));
          call.end();
          return;
        }
        client.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(bytes),
          { deadline: Date.now() + HANG_MS },
          (err) => resolve(err ? grpc.status[err.code]! : 'OK'),
        );
      });
    });
    for (const c of clients) c.close();
    console.log(`gRPC: ${JSON.stringify(tally)}`);
    expect(unexpected(tally, /^(OK|INVALID_ARGUMENT|RESOURCE_EXHAUSTED)$/)).toEqual({});
    expect(tally.INVALID_ARGUMENT).toBeGreaterThan(N / 10);
    await stillServing('grpc');
  }, 240_000);

  for (const subprotocol of ['json', 'bytes'] as const) {
    it(`WebSocket ${subprotocol}: each frame answered, or the socket closed 1000 / 1009 / 1011 with a reason`, async () => {
      /** One socket per lane, reopened when the server closes it (garbage closes it). */
      const lanes = new Map<number, { socket: WebSocket; open: Promise<void> }>();
      const socketFor = (id: number) => {
        let s = lanes.get(id);
        if (!s || s.socket.readyState >= WebSocket.CLOSING) {
          const socket = new WebSocket(`${wsAddress}/`, subprotocol, { maxPayload: 1 << 26 });
          socket.on('error', () => {});
          const open = new Promise<void>((resolve) => {
            socket.once('open', () => resolve());
            socket.once('close', () => resolve());
          });
          s = { socket, open };
          lanes.set(id, s);
        }
        return s;
      };
      const tally = await drive(N, 16, async (i, id, tried) => {
        const f = fuzzerFor(subprotocol === 'json' ? 2 : 3, i);
        const { socket, open } = socketFor(id);
        await open;
        if (socket.readyState !== WebSocket.OPEN) return 'refused at open';
        let frame: string | Buffer;
        if (subprotocol === 'json')
          frame =
            f.random() < 0.5
              ? (JSON.stringify(f.mutateJson(f.pick(JSON_SEEDS))) ?? '')
              : f.chance(0.8)
                ? f.mutateText(JSON.stringify(f.pick(JSON_SEEDS)))
                : Buffer.from(f.mutateBytes(f.pick(PROTO_SEEDS)));
        else
          frame = f.chance(0.9)
            ? Buffer.from(f.mutateBytes(f.pick(PROTO_SEEDS)))
            : JSON.stringify(f.pick(JSON_SEEDS));
        tried.input = show(frame);
        return new Promise<string>((resolve) => {
          const done = (outcome: string) => {
            socket.off('message', onMessage);
            socket.off('close', onClose);
            resolve(outcome);
          };
          const onMessage = () => done('answered');
          const onClose = (code: number, reason: Buffer) =>
            done(
              reason.length || code === 1000 ? `closed ${code}` : `closed ${code} without a reason`,
            );
          socket.on('message', onMessage);
          socket.on('close', onClose);
          socket.send(frame, { binary: typeof frame !== 'string' });
        });
      });
      for (const { socket } of lanes.values()) socket.terminate();
      console.log(`WebSocket ${subprotocol}: ${JSON.stringify(tally)}`);
      expect(unexpected(tally, /^(answered|closed (1000|1009|1011))$/)).toEqual({});
      await stillServing(`ws-${subprotocol}`);
    }, 240_000);
  }

  it('job API: 202 / 200 for what is valid, 400 / 404 / 413 / 415 / 422 naming the problem, never 500', async () => {
    const agent = new Agent({ connections: 8 });
    const seed = {
      endpoint: '/upper',
      asset_key: '/tmp/fuzz.png',
      ref_id: 'r1',
      ref_type: 'fuzz',
      parameters: { a: 1 },
      priority: 1,
      retry_limit: 1,
      retry_delay: 1,
      retry_backoff: true,
      expire_in: 60,
      start_after: 3600,
      idempotency_key: 'fuzz-key',
    };
    // Ids and queries stay short enough for Node's limits on a request line (those answer 414 and
    // close the connection, which the HTTP parser's own tests cover).
    const short = (v: unknown) => Buffer.from(String(v).slice(0, 500)).toString('latin1');
    const tally = await drive(N, 8, async (i, _lane, tried) => {
      const f = fuzzerFor(4, i);
      const kind = f.random();
      let res: Awaited<ReturnType<typeof request>>;
      if (kind < 0.75) {
        const body =
          kind < 0.6
            ? (JSON.stringify(f.mutateJson(seed)) ?? '')
            : f.mutateText(JSON.stringify(seed));
        tried.input = `POST /api/v1/jobs ${show(body)}`;
        res = await request(`${httpAddress}/api/v1/jobs`, {
          method: 'POST',
          dispatcher: agent,
          body,
          headers: { 'content-type': 'application/json' },
        });
      } else if (kind < 0.9) {
        const id = encodeURIComponent(short(f.value(0)));
        tried.input = `GET /api/v1/jobs/${id}`;
        res = await request(`${httpAddress}/api/v1/jobs/${id}`, { dispatcher: agent });
      } else {
        const q = new URLSearchParams({
          [f.pick(['state', 'queue', 'limit', 'after', 'x'])]: short(f.value(0)),
        });
        tried.input = `GET /api/v1/jobs?${q}`;
        res = await request(`${httpAddress}/api/v1/jobs?${q}`, { dispatcher: agent });
      }
      const text = await res.body.text();
      // Node's HTTP parser and fastify's router answer 414 (URI too long) themselves.
      if (res.statusCode >= 400 && res.statusCode < 500 && ![404, 414].includes(res.statusCode)) {
        const detail = (JSON.parse(text) as { detail?: unknown }).detail;
        if (typeof detail !== 'string' || detail === '')
          return `${res.statusCode} without a detail`;
      }
      return res.statusCode >= 500
        ? `${res.statusCode} ${text.slice(0, 80)}`
        : String(res.statusCode);
    });
    await agent.close();
    console.log(`job API: ${JSON.stringify(tally)}`);
    expect(unexpected(tally, /^(200|202|400|404|413|414|415|422)$/)).toEqual({});
    expect(tally['202'] ?? 0).toBeGreaterThan(0);
    await stillServing('jobs');
  }, 240_000);
});
