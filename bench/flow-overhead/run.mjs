// bench/flow-overhead: what the gateway and each extra hop cost. Four ways to the same no-op
// endpoint, measured in alternating rounds of the same run with the same raw grpc-js client:
//   direct:  client -> executor A
//   gw1:     client -> `marie gateway` -> A
//   gw2:     client -> `marie gateway` -> A -> B   (the issue's chain; the gateway calls A, then B)
//   raw2:    client -> raw grpc-js proxy -> A -> B (bytes forwarded untouched: the floor of a hop)
// Added latency per hop is (p50(gw2) - p50(direct)) / 2: gw2 makes two more network round trips
// than direct (client->gateway and gateway->B). The ratio gw2/raw2 is what the gateway costs over
// grpc-js itself. Run by hand after `npm run build`:
//   npm run bench:flow-overhead          (DURATION=s per round, ROUNDS)
// MARIE_BASELINE=/path/to/a/built/checkout adds that commit's chain gw>A>B to the same rounds
// (`before`, its ratio against the same raw chain).
import { cpus } from 'node:os';
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
import { big, MARIE_BIN, NOOP_DIR, small } from '../lib/payloads.mjs';

const READY = /ready grpc:\/\/[^:]+:(\d+)/;
const executor = (bin = MARIE_BIN, cwd = NOOP_DIR) =>
  start(bin, ['executor', '--uses', 'noop.yml', '--host', '127.0.0.1', '--port', '0'], READY, cwd);
const gateway = (nodes, bin = MARIE_BIN, cwd = NOOP_DIR) => {
  const description = { 'start-gateway': [nodes[0].name] };
  for (const [i, n] of nodes.entries()) description[n.name] = [nodes[i + 1]?.name ?? 'end-gateway'];
  const addresses = Object.fromEntries(nodes.map((n) => [n.name, [`127.0.0.1:${n.port}`]]));
  return start(
    bin,
    [
      'gateway',
      '--graph-description',
      JSON.stringify(description),
      '--deployments-addresses',
      JSON.stringify(addresses),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ],
    READY,
    cwd,
  );
};

const a = await executor();
const b = await executor();
const gw1 = await gateway([{ name: 'a', port: a.port }]);
const gw2 = await gateway([
  { name: 'a', port: a.port },
  { name: 'b', port: b.port },
]);

// MARIE_BASELINE: that checkout's executors and chained gateway too, in the same rounds.
const before = BASELINE
  ? await (async () => {
      const [pa, pb] = [
        await executor(BASELINE.bin, BASELINE.noopDir),
        await executor(BASELINE.bin, BASELINE.noopDir),
      ];
      const chain = await gateway(
        [
          { name: 'a', port: pa.port },
          { name: 'b', port: pb.port },
        ],
        BASELINE.bin,
        BASELINE.noopDir,
      );
      return { a: pa, b: pb, gw2: chain };
    })()
  : undefined;

const raw2 = await start(
  join(import.meta.dirname, 'raw-proxy.mjs'),
  [String(a.port), String(b.port)],
  /ready (\d+)/,
  import.meta.dirname,
);

const rows = [];
for (const [name, payload] of [
  ['1 small text doc', small],
  ['64 docs x 768 float32', big],
]) {
  for (const concurrency of [1, 32]) {
    const [direct, one, two, raw, old] = await alternate(
      before ? [a, gw1, gw2, raw2, before.gw2] : [a, gw1, gw2, raw2],
      payload,
      concurrency,
    );
    rows.push({ name, concurrency, direct, one, two, raw, old });
  }
}
for (const p of [raw2, gw2, gw1, b, a, before?.gw2, before?.a, before?.b]) p?.child.kill('SIGTERM');

console.log(
  `flow-overhead: median of ${ROUNDS} alternating rounds of ${DURATION_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up) per cell, node ${process.version}, ${cpus().length} CPUs${before ? `, baseline ${process.env.MARIE_BASELINE}` : ''}`,
);
console.log('');
const us = (x) => `${x.toFixed(0)}us`;
table(
  [
    'payload',
    'in flight',
    'A req/s',
    'gw>A req/s',
    'gw>A>B r/s',
    'raw>A>B r/s',
    'ratio',
    'A p50',
    'gw>A p50',
    'gw>A>B p50',
    'raw>A>B p50',
    'A p99',
    'gw>A>B p99',
    '+us/hop',
    ...(before ? ['before r/s', 'b. ratio', 'before p50'] : []),
  ],
  rows.map((r) => [
    r.name,
    r.concurrency,
    r.direct.rps.toFixed(0),
    r.one.rps.toFixed(0),
    r.two.rps.toFixed(0),
    r.raw.rps.toFixed(0),
    (r.two.rps / r.raw.rps).toFixed(2),
    us(r.direct.p50),
    us(r.one.p50),
    us(r.two.p50),
    us(r.raw.p50),
    us(r.direct.p99),
    us(r.two.p99),
    ((r.two.p50 - r.direct.p50) / 2).toFixed(0),
    ...(r.old ? [r.old.rps.toFixed(0), (r.old.rps / r.raw.rps).toFixed(2), us(r.old.p50)] : []),
  ]),
);
console.log('');
console.log(
  'target: <= 300 us added p50 per hop; one small doc through the gateway (gw>A>B, 1 in flight) < 1000 us p50',
);
