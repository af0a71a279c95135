// A real Prometheus (Debian's `prometheus`) scrapes a running Flow: the gateway and two executor
// replicas started with monitoring, jobs on the gateway, the GPU monitor on the fake NVML. Its
// query API must answer what was sent: Jina's request metrics, dynamic batching, GPU, storage,
// event and job metrics.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  type TestDatabase,
  testDatabase,
} from '../../packages/storage/test/support/postgres.js';
import { buildFakeGpu, type FakeGpu } from '../support/fake-gpu.js';
import { type MarieProcess, runMarie, waitReady } from '../support/marie-process.js';

let db: TestDatabase;
let dir: string;
let gpu: FakeGpu;
let flow: MarieProcess | undefined;
let prometheus: ChildProcess | undefined;

beforeAll(async () => {
  db = await testDatabase('marie_prom');
  dir = mkdtempSync(join(tmpdir(), 'marie-prom-'));
  gpu = buildFakeGpu();
});
afterAll(async () => {
  prometheus?.kill('SIGKILL');
  if (flow && flow.child.exitCode === null) flow.child.kill('SIGKILL');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
  if (gpu) rmSync(gpu.dir, { recursive: true, force: true });
});

async function query(
  port: number,
  promql: string,
): Promise<{ labels: Record<string, string>; value: number }[]> {
  const res = await fetch(
    `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`,
  );
  const body = (await res.json()) as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  expect(body.status, promql).toBe('success');
  return body.data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
}

async function eventually<T>(
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Prometheus scraping a running Flow', () => {
  it('answers queries with what the gateway, the executors, the GPU monitor, storage, events and jobs did', async () => {
    const executor = join(dir, 'ops.yml');
    writeFileSync(
      executor,
      `jtype: OpsExecutor
py_modules: [${join(import.meta.dirname, 'fixtures/ops-executor.ts')}]
with:
  storage: { psql: { enabled: true, url: "${db.url}" } }
  toast: { native: { path: "${join(dir, 'events.jsonl')}" } }
  health: { gpu_monitor_enabled: true, interval_s: 0.5, jitter_s: 0 }
`,
    );
    const gatewayMetrics = await freePort();
    const yml = join(dir, 'flow.yml');
    writeFileSync(
      yml,
      `jtype: Flow
with:
  protocol: [grpc, http]
  port: [0, 0]
  monitoring: true
  port_monitoring: ${gatewayMetrics}
executors:
  - name: ops
    uses: ${executor}
    replicas: 2
jobs:
  database: "${db.url}"
  queues: { upper: 1 }
  ui: false
`,
    );
    flow = runMarie(['flow', '--uses', yml], {
      env: { ...gpu.env, MARIE_WORKSPACE: join(dir, 'workspace') },
    });
    const [grpcReady, httpReady] = await waitReady(flow, 2, 60_000);
    // One `monitoring URL LABEL` line for the gateway and one per replica, before `ready`.
    const targets = flow
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('monitoring '))
      .map((l) => {
        const [, url, label] = l.split(' ');
        return { url: new URL(url!), label: label! };
      });
    expect(targets.map((t) => t.label).sort()).toEqual([
      'gateway',
      'ops/shard-0/replica-0',
      'ops/shard-0/replica-1',
    ]);
    expect(targets.find((t) => t.label === 'gateway')!.url.port).toBe(String(gatewayMetrics));

    const client = new Client({ host: grpcReady!.slice('ready '.length) });
    for (let i = 0; i < 5; i++) await client.post('/upper', [{ text: `a${i}` }, { text: 'b' }]);
    await expect(client.post('/fail', [{}])).rejects.toThrow('asked to fail');
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => client.post('/embed', [{ text: `e${i}` }])),
    );
    await client.post('/upper', [{ text: 'job' }], {
      parameters: { job_id: 'prom-job-1', ref_id: 'p1', ref_type: 'prom' },
    });
    const http = httpReady!.slice('ready '.length);
    const submitted = await fetch(`${http}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ endpoint: '/upper', ref_id: 'p2', ref_type: 'prom' }),
    });
    expect(submitted.status).toBe(202);
    client.close();

    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: marie
    static_configs:
${targets.map((t) => `      - targets: ['${t.url.host}']\n        labels: { replica: '${t.label}' }`).join('\n')}
`,
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let promLog = '';
    prometheus.stderr!.on('data', (c: Buffer) => {
      promLog += c.toString();
    });
    const q = (promql: string) =>
      eventually(
        () => query(promPort, promql).catch(() => []),
        (r) => r.length > 0,
        `${promql} (prometheus: ${promLog.slice(-500)})`,
      );
    const one = async (promql: string, want: number) => {
      const r = await eventually(
        () => query(promPort, promql).catch(() => []),
        (v) => v.length === 1 && v[0]!.value === want,
        promql,
      );
      return r[0]!.value;
    };

    // Every target scraped and up.
    await eventually(
      () => query(promPort, 'up == 1').catch(() => []),
      (r) => r.length === 3,
      'three targets up',
    );
    // Jina's request metrics: the executors (two replicas, summed) and the gateway.
    expect(await one('sum(jina_successful_requests_total{runtime_name="ops"})', 15)).toBe(15);
    expect(await one('sum(jina_failed_requests_total{runtime_name="ops"})', 1)).toBe(1);
    // The gateway's servers saw 15 requests (the job ran through the Flow in process).
    expect(await one('jina_successful_requests_total{runtime_name="gateway"}', 14)).toBe(14);
    expect(await one('jina_failed_requests_total{runtime_name="gateway"}', 1)).toBe(1);
    expect(await one('sum(jina_document_processed_total{executor_endpoint="/upper"})', 11)).toBe(
      11,
    );
    // Every hop to the executors (the job's too) timed by the gateway.
    expect(await one('sum(jina_sending_request_seconds_count{deployment="ops"})', 16)).toBe(16);
    expect(
      await one('sum(jina_process_request_seconds_count{executor_endpoint="/upper"})', 7),
    ).toBe(7);
    // Dynamic batching: 8 documents went through batches (of up to 4), whatever the split.
    expect(await one('sum(marie_dynamic_batching_batch_size_sum)', 8)).toBe(8);
    const batches = await q('sum(marie_dynamic_batching_batch_size_count)');
    expect(batches[0]!.value).toBeGreaterThanOrEqual(2);
    expect(batches[0]!.value).toBeLessThanOrEqual(8);
    // GPU gauges from the fake NVML (1 GiB used of 16 per device), on both replicas.
    const used = await q('marie_gpu_memory_used_bytes');
    expect(new Set(used.map((r) => r.labels.replica))).toEqual(
      new Set(['ops/shard-0/replica-0', 'ops/shard-0/replica-1']),
    );
    expect(used.every((r) => r.value === 2 ** 30)).toBe(true);
    expect(await one('min(marie_gpu_healthy)', 1)).toBe(1);
    expect(await one('max(marie_gpu_utilization_ratio)', 0.37)).toBe(0.37);
    // Storage: the job records' statements; events: started and completed, delivered.
    const stored = await q('sum(marie_storage_operations_total{outcome="ok"})');
    expect(stored[0]!.value).toBeGreaterThan(0);
    expect(await one('sum(marie_storage_operations_total{outcome="error"}) or vector(0)', 0)).toBe(
      0,
    );
    expect(await one('sum(marie_events_delivered_total{handler="native"})', 4)).toBe(4); // 2 jobs
    expect(await one('sum(marie_events_dead_lettered_total) or vector(0)', 0)).toBe(0);
    // Jobs, on the gateway: one submitted, run and completed by its worker.
    expect(await one('marie_jobs_submitted_total{queue="upper"}', 1)).toBe(1);
    expect(await one('marie_jobs_finished_total{queue="upper",outcome="completed"}', 1)).toBe(1);
    expect(await one('marie_jobs_running{queue="upper"}', 0)).toBe(0);

    flow.child.kill('SIGTERM');
    expect(await flow.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
