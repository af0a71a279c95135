// Shared by the gRPC benchmarks: start a process that prints its port, load a gRPC unary method
// with fixed request bytes at a given concurrency, and keep the median of alternating rounds.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';

export const SINGLE = '/jina.JinaSingleDataRequestRPC/process_single_data';
export const DURATION_MS = Number(process.env.DURATION ?? 5) * 1000;
export const WARMUP_MS = 1000;
export const ROUNDS = Number(process.env.ROUNDS ?? 3);

/**
 * A built checkout of an earlier commit to measure in the same run (`MARIE_BASELINE=/path/to/it`):
 * its `marie` and its own no-op executor, so that its packages load its own core.
 */
export const BASELINE = process.env.MARIE_BASELINE
  ? {
      bin: join(process.env.MARIE_BASELINE, 'packages/cli/dist/bin.js'),
      noopDir: join(process.env.MARIE_BASELINE, 'bench/grpc-overhead'),
    }
  : undefined;

const identity = (b) => b;

/**
 * A raw @grpc/grpc-js server of process_single_data that answers with `handle(requestBytes)`,
 * never decoding them; prints `ready PORT` once bound and stops on SIGTERM (the benches' floors).
 */
export function serveRaw(handle) {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  server.addService(
    {
      process_single_data: {
        path: SINGLE,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      // A plain answer goes back at once (an echo must cost no more than grpc-js itself).
      process_single_data: (call, callback) => {
        let out;
        try {
          out = handle(call.request);
        } catch (err) {
          return callback(err);
        }
        if (out instanceof Promise) out.then((bytes) => callback(null, bytes), callback);
        else callback(null, out);
      },
    },
  );
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`ready ${port}\n`);
  });
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

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
