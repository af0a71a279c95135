// bench/grpc-overhead: a no-op endpoint served by `marie executor` against a raw @grpc/grpc-js
// unary echo server carrying the same serialized bytes. Same machine, same run, same client, same
// concurrency. Run by hand: npm run build && npm run bench:grpc-overhead  (DURATION=s per round, ROUNDS)
import { join } from 'node:path';
import { alternate, DURATION_MS, ROUNDS, start, WARMUP_MS } from '../lib/grpc-load.mjs';
import { big, MARIE_BIN, small } from '../lib/payloads.mjs';

const here = import.meta.dirname;

const raw = await start(join(here, 'raw-echo-server.mjs'), [], /ready (\d+)/, here);
const marie = await start(
  MARIE_BIN,
  ['executor', '--uses', 'noop.yml', '--host', '127.0.0.1', '--port', '0'],
  /ready grpc:\/\/[^:]+:(\d+)/,
  here,
);

// This machine's loopback timings drift by tens of percent from second to second: measure raw and
// marie in alternating rounds and keep the median round of each.
const rows = [];
for (const [name, payload] of [
  ['1 small text doc', small],
  ['64 docs x 768 float32', big],
]) {
  for (const concurrency of [1, 32]) {
    const [base, ours] = await alternate([raw, marie], payload, concurrency);
    rows.push({ name, concurrency, bytes: payload.length, base, ours });
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
