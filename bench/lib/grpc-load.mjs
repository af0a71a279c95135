// Shared by the gRPC benchmarks: start a process that prints its port, load a gRPC unary method
// with fixed request bytes at a given concurrency, and keep the median of alternating rounds.
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';

export const SINGLE = '/jina.JinaSingleDataRequestRPC/process_single_data';
export const DURATION_MS = Number(process.env.DURATION ?? 5) * 1000;
export const WARMUP_MS = 1000;
export const ROUNDS = Number(process.env.ROUNDS ?? 3);

/** Spawns `node cmd ...args` and resolves once stdout matches `pattern` (its groups: the ports). */
export function start(cmd, args, pattern, cwd) {
  const child = spawn(process.execPath, [cmd, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MARIE_LOG_LEVEL: 'warn' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = pattern.exec(out);
      if (m) resolve({ child, port: Number(m[1]), ports: m.slice(1).map(Number) });
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

/** Requests/s, p50 and p99 (µs) of `concurrency` callers sending `payload` for DURATION_MS. */
export async function load(port, payload, concurrency, path = SINGLE) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
  });
  const buf = Buffer.from(payload);
  const once = () =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (b) => b,
        (b) => b,
        buf,
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  const first = await once();
  const latencies = [];
  let done = 0;
  const warmEnd = Date.now() + WARMUP_MS;
  const end = warmEnd + DURATION_MS;
  const worker = async () => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      await once();
      if (Date.now() >= warmEnd) {
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
  };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The median round of each measure. */
export const pick = (runs) => ({
  rps: median(runs.map((x) => x.rps)),
  p50: median(runs.map((x) => x.p50)),
  p99: median(runs.map((x) => x.p99)),
});

/** Loads each target in turn, ROUNDS times (alternating, as loopback timings drift), medians. */
export async function alternate(targets, payload, concurrency) {
  const runs = targets.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    for (const [i, t] of targets.entries()) runs[i].push(await load(t.port, payload, concurrency));
  return runs.map(pick);
}

/** Prints rows of cells, the first column left-aligned. */
export function table(head, rows) {
  const line = (cells) =>
    cells.map((c, i) => (i === 0 ? String(c).padEnd(24) : String(c).padStart(11))).join(' ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}
