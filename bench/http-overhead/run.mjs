// bench/http-overhead: the no-op endpoint over `marie executor --protocol http websocket` against a
// raw fastify route that parses and returns the same JSON, and a raw `ws` echo of the same binary
// frames (WebSocket `bytes`: DataRequestProto). Same machine, same run, same client loop, 1 and 32
// connections, alternating rounds, medians. Run by hand: npm run build && npm run bench:http-overhead
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createDataRequest } from '@marie/core';
import { DocList, defineDoc, Embedding, Type } from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { pick, start, table } from '../lib/grpc-load.mjs';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const DURATION_MS = Number(process.env.DURATION ?? 3) * 1000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WARMUP_MS = 500;

// The same document type the served no-op endpoint declares (bench/grpc-overhead/noop-executor.ts).
const BenchDoc = defineDoc('BenchDoc', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
});
const embedding = () => Array.from({ length: 768 }, (_, i) => Math.fround(Math.sin(i)));
const payloads = [
  ['1 small text doc', [{ text: 'hello world' }]],
  [
    '64 docs x 768 float32',
    Array.from({ length: 64 }, (_, i) => ({ text: `doc ${i}`, embedding: embedding() })),
  ],
];

async function measure(concurrency, once) {
  const latencies = [];
  let done = 0;
  const warmEnd = Date.now() + WARMUP_MS;
  const end = warmEnd + DURATION_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < end) {
        const t = process.hrtime.bigint();
        await once(worker);
        if (Date.now() >= warmEnd) {
          latencies.push(Number(process.hrtime.bigint() - t) / 1000);
          done++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { rps: done / (DURATION_MS / 1000), p50: pct(0.5), p99: pct(0.99) };
}

function httpLoad(port, body, concurrency) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
  const text = JSON.stringify(body);
  return measure(concurrency, async () => {
    const res = await pool.request({
      method: 'POST',
      path: '/noop',
      body: text,
      headers: { 'content-type': 'application/json' },
    });
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${await res.body.text()}`);
    await res.body.arrayBuffer();
  }).finally(() => pool.close());
}

async function wsLoad(port, frame, concurrency, subprotocol) {
  const sockets = await Promise.all(
    Array.from(
      { length: concurrency },
      () =>
        new Promise((resolve, reject) => {
          const ws = subprotocol
            ? new WebSocket(`ws://127.0.0.1:${port}/`, subprotocol, { maxPayload: 1 << 30 })
            : new WebSocket(`ws://127.0.0.1:${port}/`, { maxPayload: 1 << 30 });
          ws.on('open', () => resolve(ws));
          ws.on('error', reject);
        }),
    ),
  );
  const result = await measure(
    concurrency,
    (worker) =>
      new Promise((resolve) => {
        const ws = sockets[worker];
        ws.once('message', resolve);
        ws.send(frame);
      }),
  );
  for (const ws of sockets) ws.terminate();
  return result;
}

const raw = await start(join(here, 'raw-servers.mjs'), [], /ready (\d+) (\d+)/, here);
const marie = await start(
  join(root, 'packages/cli/dist/bin.js'),
  [
    'executor',
    '--uses',
    join(root, 'bench/grpc-overhead/noop.yml'),
    '--protocol',
    'http',
    'websocket',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
  ],
  /ready http:\/\/[^:]+:(\d+)\nready ws:\/\/[^:]+:(\d+)/,
  here,
);
const [rawHttp, rawWs] = raw.ports;
const [marieHttp, marieWs] = marie.ports;

const rows = [];
for (const [name, docs] of payloads) {
  const body = { data: docs, parameters: {} };
  const frame = Buffer.from(
    encodeDataRequest(createDataRequest({ endpoint: '/noop', docs: new DocList(BenchDoc, docs) })),
  );
  for (const concurrency of [1, 32]) {
    const cells = { http: [[], []], ws: [[], []] };
    for (let r = 0; r < ROUNDS; r++) {
      cells.http[0].push(await httpLoad(rawHttp, body, concurrency));
      cells.http[1].push(await httpLoad(marieHttp, body, concurrency));
      cells.ws[0].push(await wsLoad(rawWs, frame, concurrency));
      cells.ws[1].push(await wsLoad(marieWs, frame, concurrency, 'bytes'));
    }
    rows.push({
      name,
      concurrency,
      kind: 'HTTP json',
      base: pick(cells.http[0]),
      ours: pick(cells.http[1]),
      bytes: JSON.stringify(body).length,
    });
    rows.push({
      name,
      concurrency,
      kind: 'WS bytes',
      base: pick(cells.ws[0]),
      ours: pick(cells.ws[1]),
      bytes: frame.length,
    });
  }
}
raw.child.kill('SIGTERM');
marie.child.kill('SIGTERM');

console.log(
  `http-overhead: median of ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s per cell, node ${process.version}, ${cpus().length} CPUs`,
);
console.log(
  'baselines: raw fastify route returning the parsed JSON; raw ws echo of the same frame',
);
console.log('');
const us = (x) => `${x.toFixed(0)}us`;
table(
  [
    'payload',
    'kind',
    'conns',
    'bytes',
    'raw req/s',
    'marie req/s',
    'ratio',
    'raw p50',
    'marie p50',
    'raw p99',
    'marie p99',
  ],
  rows.map((r) => [
    r.name,
    r.kind,
    r.concurrency,
    r.bytes,
    r.base.rps.toFixed(0),
    r.ours.rps.toFixed(0),
    (r.ours.rps / r.base.rps).toFixed(2),
    us(r.base.p50),
    us(r.ours.p50),
    us(r.base.p99),
    us(r.ours.p99),
  ]),
);
console.log('');
console.log('target: HTTP ratio >= 0.85 of raw fastify');
