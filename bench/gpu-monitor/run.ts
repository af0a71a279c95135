// bench/gpu-monitor: what the GPU health monitor costs. CPU per probe pass (NVML only, and NVML +
// the compute probe), and request p50/p99 through a served MarieExecutor (gRPC, 8 in flight) with
// the monitor off and on (a pass every 50 ms, the compute probe every 3rd: 600x Marie's default
// rate, to make its cost visible). Without a GPU it runs on the fake NVML/CUDA libraries of
// tests/fixtures/gpu (compiled here with cc); on a GPU machine set MARIE_REAL_GPU=1.
// Run: npm run bench:gpu-monitor
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { RequestHandler, requests } from '@marie/core';
import { MarieExecutor } from '@marie/executor';
import { HealthMonitor, parseHealthConfig } from '@marie/gpu';
import { GrpcServer } from '@marie/transport-grpc';

const dir = mkdtempSync(join(tmpdir(), 'marie-bench-gpu-'));
if (!process.env.MARIE_REAL_GPU) {
  const src = join(import.meta.dirname, '../../tests/fixtures/gpu');
  process.env.MARIE_NVML_LIBRARY = join(dir, 'libnvidia-ml.so.1');
  process.env.MARIE_CUDA_LIBRARY = join(dir, 'libcuda.so.1');
  process.env.FAKE_GPU_STATE_FILE = join(dir, 'state');
  writeFileSync(process.env.FAKE_GPU_STATE_FILE, 'healthy');
  execFileSync('cc', [
    '-shared',
    '-fPIC',
    '-O2',
    '-o',
    process.env.MARIE_NVML_LIBRARY,
    join(src, 'fake_nvml.c'),
  ]);
  execFileSync('cc', [
    '-shared',
    '-fPIC',
    '-O2',
    '-o',
    process.env.MARIE_CUDA_LIBRARY,
    join(src, 'fake_cuda.c'),
  ]);
}

const cpuPer = async (label: string, passes: number, fn: () => Promise<unknown>) => {
  await fn();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) await fn();
  const u = process.cpuUsage(u0);
  const ms = performance.now() - t0;
  console.log(
    `  ${label.padEnd(30)} ${((u.user + u.system) / passes).toFixed(0).padStart(6)} us CPU, ${((ms / passes) * 1000).toFixed(0).padStart(6)} us wall per pass`,
  );
};

console.log(
  `monitor passes (${process.env.MARIE_REAL_GPU ? 'real GPU' : 'fake NVML/CUDA libraries'}):`,
);
const nvmlOnly = new HealthMonitor(
  parseHealthConfig({ gpu_monitor_enabled: true, compute_check_enabled: false }),
  { name: 'bench' },
);
await cpuPer('NVML pass', 500, () => nvmlOnly.probe());
const withProbe = new HealthMonitor(parseHealthConfig({ gpu_monitor_enabled: true }), {
  name: 'bench',
});
await cpuPer('NVML + compute probe (128^2)', 50, () => withProbe.probe({ compute: true }));

class Echo extends MarieExecutor {
  @requests({ on: '/echo' })
  echo() {}
}

async function latencies(
  health: Record<string, unknown>,
): Promise<{ p50: number; p99: number; rps: number }> {
  const executor = new Echo({ health });
  const handler = new RequestHandler(executor);
  await handler.open();
  const server = new GrpcServer(handler, { host: '127.0.0.1', port: 0 });
  const { port } = await server.start();
  const client = new Client({ host: `grpc://127.0.0.1:${port}` });
  const times: number[] = [];
  const total = 4000;
  let next = 0;
  for (let i = 0; i < 200; i++) await client.post('/echo', [{ text: 'warm' }]);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < total) {
        const t = performance.now();
        await client.post('/echo', [{ text: 'x' }]);
        times.push(performance.now() - t);
      }
    }),
  );
  const wall = performance.now() - t0;
  client.close();
  await server.shutdown();
  times.sort((a, b) => a - b);
  return {
    p50: times[Math.floor(times.length * 0.5)]!,
    p99: times[Math.floor(times.length * 0.99)]!,
    rps: (total / wall) * 1000,
  };
}

const off = await latencies({ gpu_monitor_enabled: false });
const on = await latencies({
  gpu_monitor_enabled: true,
  interval_s: 0.05,
  jitter_s: 0,
  compute_check_every: 3,
});
console.log('requests, gRPC, 8 in flight, 4000 requests:');
for (const [label, r] of [
  ['monitor off', off],
  ['monitor on (every 50 ms)', on],
] as const)
  console.log(
    `  ${label.padEnd(30)} p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.rps.toFixed(0)} req/s`,
  );
console.log(
  `  p99 ratio on/off ${(on.p99 / off.p99).toFixed(2)}x, throughput ratio ${(on.rps / off.rps).toFixed(2)}x`,
);
rmSync(dir, { recursive: true, force: true });
