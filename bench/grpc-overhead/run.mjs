// bench/grpc-overhead: a no-op endpoint served by `marie executor` against a raw @grpc/grpc-js
// unary echo server carrying the same serialized bytes. Same machine, same run, same client, same
// concurrency. Run by hand: npm run build && npm run bench:grpc-overhead  (DURATION=s per round, ROUNDS)
// MARIE_BASELINE=/path/to/a/built/checkout adds that commit's `marie executor` to the same rounds.
import { join } from 'node:path';
import {
  alternate,
  BASELINE,
  DURATION_MS,
  ROUNDS,
  start,
  table,
  WARMUP_MS,
} from '../lib/grpc-load.mjs';
import { big, MARIE_BIN, small } from '../lib/payloads.mjs';

const here = import.meta.dirname;
const READY = /ready grpc:\/\/[^:]+:(\d+)/;
const executor = (bin, cwd) =>
  start(bin, ['executor', '--uses', 'noop.yml', '--host', '127.0.0.1', '--port', '0'], READY, cwd);

const raw = await start(join(here, 'raw-echo-server.mjs'), [], /ready (\d+)/, here);
const marie = await executor(MARIE_BIN, here);
const before = BASELINE ? await executor(BASELINE.bin, BASELINE.noopDir) : undefined;

// This machine's loopback timings drift by tens of percent from second to second: measure raw and
// marie in alternating rounds and keep the median round of each.
const rows = [];
for (const [name, payload] of [
  ['1 small text doc', small],
  ['64 docs x 768 float32', big],
]) {
  for (const concurrency of [1, 32]) {
    const [base, ours, old] = await alternate(
      before ? [raw, marie, before] : [raw, marie],
      payload,
      concurrency,
    );
    rows.push({ name, concurrency, bytes: payload.length, base, ours, old });
  }
}
for (const p of [raw, marie, before]) p?.child.kill('SIGTERM');

console.log(
  `grpc-overhead: median of ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up) per cell, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs${before ? `, baseline ${process.env.MARIE_BASELINE}` : ''}`,
);
console.log('');
const us = (x) => `${x.toFixed(0)}us`;
table(
  [
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
    ...(before ? ['before r/s', 'b. ratio', 'before p50'] : []),
  ],
  rows.map((r) => [
    r.name,
    r.concurrency,
    r.bytes,
    r.base.rps.toFixed(0),
    r.ours.rps.toFixed(0),
    (r.ours.rps / r.base.rps).toFixed(2),
    us(r.base.p50),
    us(r.ours.p50),
    (r.ours.p50 - r.base.p50).toFixed(0),
    us(r.base.p99),
    us(r.ours.p99),
    ...(r.old ? [r.old.rps.toFixed(0), (r.old.rps / r.base.rps).toFixed(2), us(r.old.p50)] : []),
  ]),
);
console.log('');
console.log('target: ratio >= 0.90 and p50 within +50 us');
