// bench/grpc-overhead: a no-op endpoint served by `marie executor` against a raw @grpc/grpc-js
// unary echo server carrying the same serialized bytes. Same machine, same run, same client, same
// concurrency. Run by hand: npm run build && npm run bench:grpc-overhead  (DURATION=s per round, ROUNDS)
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createDataRequest } from '@marie/core';
import { DocList } from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const DURATION_MS = Number(process.env.DURATION ?? 5) * 1000;
const WARMUP_MS = 1000;
const PATH = '/jina.JinaSingleDataRequestRPC/process_single_data';

function start(cmd, args, pattern) {
  const child = spawn(process.execPath, [cmd, ...args], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MARIE_LOG_LEVEL: 'warn' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = pattern.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

// The tsx-loaded executor module imports @marie/* from dist: build first (npm run build).
const { BenchDoc } = await import(join(root, 'node_modules/tsx/dist/esm/api/index.mjs')).then(
  async (tsx) => {
    const api = tsx.register({ namespace: 'bench' });
    return api.import('./noop-executor.ts', import.meta.url);
  },
);

const small = encodeDataRequest(
  createDataRequest({ endpoint: '/noop', docs: new DocList(BenchDoc, [{ text: 'hello world' }]) }),
);
const embedding = () => Float32Array.from({ length: 768 }, (_, i) => Math.sin(i));
const big = encodeDataRequest(
  createDataRequest({
    endpoint: '/noop',
    docs: new DocList(
      BenchDoc,
      Array.from({ length: 64 }, (_, i) => ({ text: `doc ${i}`, embedding: embedding() })),
    ),
  }),
);

async function load(port, payload, concurrency) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
  });
  const buf = Buffer.from(payload);
  const once = () =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        PATH,
        (b) => b,
        (b) => b,
        buf,
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  const first = await once();
  const latencies = [];
  let measuring = false;
  let done = 0;
  const warmEnd = Date.now() + WARMUP_MS;
  const end = warmEnd + DURATION_MS;
  const worker = async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      await once();
      if (Date.now() >= warmEnd) {
        measuring = true;
        latencies.push(Number(process.hrtime.bigint() - t) / 1000);
        done++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  client.close();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return {
    rps: done / (DURATION_MS / 1000),
    p50: pct(0.5),
    p99: pct(0.99),
    responseBytes: first.length,
    measuring,
  };
}

const raw = await start(join(here, 'raw-echo-server.mjs'), [], /ready (\d+)/);
const marie = await start(
  join(root, 'packages/cli/dist/bin.js'),
  ['executor', '--uses', 'noop.yml', '--host', '127.0.0.1', '--port', '0'],
  /ready grpc:\/\/[^:]+:(\d+)/,
);

// This machine's loopback timings drift by tens of percent from second to second: measure raw and
// marie in alternating rounds and keep the median round of each.
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [name, payload] of [
  ['1 small text doc', small],
  ['64 docs x 768 float32', big],
]) {
  for (const concurrency of [1, 32]) {
    const base = [];
    const ours = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await load(raw.port, payload, concurrency));
      ours.push(await load(marie.port, payload, concurrency));
    }
    const pick = (runs) => ({
      rps: median(runs.map((x) => x.rps)),
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
    });
    rows.push({ name, concurrency, bytes: payload.length, base: pick(base), ours: pick(ours) });
  }
}
raw.child.kill('SIGTERM');
marie.child.kill('SIGTERM');

console.log(
  `grpc-overhead: median of ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up) per cell, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`,
);
console.log('');
const head = [
  'payload',
  'conc',
  'req bytes',
  'raw req/s',
  'marie req/s',
  'ratio',
  'raw p50',
  'marie p50',
  'p50 +us',
  'raw p99',
  'marie p99',
];
console.log(head.map((h, i) => (i === 0 ? h.padEnd(22) : h.padStart(11))).join(' '));
for (const r of rows) {
  const cells = [
    r.name.padEnd(22),
    String(r.concurrency),
    String(r.bytes),
    r.base.rps.toFixed(0),
    r.ours.rps.toFixed(0),
    (r.ours.rps / r.base.rps).toFixed(2),
    `${r.base.p50.toFixed(0)}us`,
    `${r.ours.p50.toFixed(0)}us`,
    (r.ours.p50 - r.base.p50).toFixed(0),
    `${r.base.p99.toFixed(0)}us`,
    `${r.ours.p99.toFixed(0)}us`,
  ];
  console.log(cells.map((c, i) => (i === 0 ? c : c.padStart(11))).join(' '));
}
console.log('');
console.log('target: ratio >= 0.90 and p50 within +50 us');
