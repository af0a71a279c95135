// The GPU fault path as real processes, on the fake NVML/CUDA libraries: the monitor sees a lost
// GPU -> writes the fault marker -> NOT_SERVING, drains, exits 75 -> the Deployment reads the
// marker, restarts the replica -> healthy again, marker removed. Requests in flight end, none hangs.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { Deployment } from '@marie/flow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeGpu, type FakeGpu } from '../support/fake-gpu.js';
import { runMarie, waitReady } from '../support/marie-process.js';

let gpu: FakeGpu;
let failDir: string;
beforeAll(() => {
  gpu = buildFakeGpu();
  failDir = mkdtempSync(join(tmpdir(), 'marie-fail-'));
});
afterAll(() => {
  rmSync(gpu.dir, { recursive: true, force: true });
  rmSync(failDir, { recursive: true, force: true });
});

const health = { gpu_monitor_enabled: true, interval_s: 0.2, jitter_s: 0, compute_check_every: 2 };
const MODULE = join(import.meta.dirname, 'fixtures/gpu-executor.ts');

const waitFor = async <T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 30_000,
) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('a lost GPU, end to end', () => {
  it('marker, exit 75, restart by the Deployment, healthy again; in-flight requests end', async () => {
    gpu.set('healthy');
    const dep = new Deployment({
      name: 'ocr',
      uses: 'GpuWorker',
      pyModules: [MODULE],
      usesWith: { health },
      env: { ...gpu.env, JINA_FAIL_DIR: failDir, MARIE_LOG_LEVEL: 'error' },
      retries: 0,
      graceMs: 3000,
    });
    await dep.start();
    try {
      const [status] = await dep.post('/status');
      const before = JSON.parse(String(status?.text));
      expect(before).toMatchObject({
        healthy: true,
        monitor_enabled: true,
        name: 'ocr',
        pid: dep.pids()[0]![0],
      });
      await waitFor('a first NVML pass', async () => {
        const [s] = await dep.post('/status');
        return JSON.parse(String(s?.text)).nvml_available === true;
      });
      const firstPid = dep.pids()[0]![0]!;

      // Three requests in flight, then the GPU is lost.
      const started = Date.now();
      const inFlight = [1, 2, 3].map((i) =>
        dep.post('/work', [{ text: `job ${i}` }], { parameters: { ms: 20_000 } }).then(
          () => 'answered',
          (e: Error) => `error: ${e.message}`,
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      gpu.set('lost');

      const marker = await waitFor('the fault marker', () => {
        const f = readdirSync(failDir).find((n) => n === `ocr.${firstPid}.json`);
        return f && JSON.parse(readFileSync(join(failDir, f), 'utf8'));
      });
      expect(marker).toMatchObject({
        pid: firstPid,
        name: 'ocr',
        fail_streak: 1,
        total_failures: 1,
        exit_code: 75,
      });
      expect(marker.reason).toMatch(/GPU_IS_LOST \(15\)/);
      expect(typeof marker.ts).toBe('number');
      expect(readdirSync(failDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);

      const outcomes = await Promise.all(inFlight);
      // Cut by the drain (3 s) or answered, never left hanging for the 20 s they asked for.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(outcomes.every((o) => o === 'answered' || o.startsWith('error:'))).toBe(true);

      gpu.set('healthy');
      const secondPid = await waitFor('a new replica', () => {
        const p = dep.pids()[0]![0];
        return p !== firstPid && p;
      });
      await waitFor('the replica to answer', async () => {
        try {
          const [s] = await dep.post('/status');
          return JSON.parse(String(s?.text)).pid === secondPid;
        } catch {
          return false;
        }
      });
      await waitFor(
        'the marker to be removed',
        () => !existsSync(join(failDir, `ocr.${firstPid}.json`)),
      );
      const [after] = await dep.post('/work', [{ text: 'again' }], { parameters: { ms: 1 } });
      expect(String(after?.text)).toBe(`done by ${secondPid}`);
    } finally {
      await dep.close();
    }
  }, 90_000);

  it('MarieExecutor is a jtype of its own: `marie executor --uses MarieExecutor` serves /status', async () => {
    const marie = runMarie(['executor', '--uses', 'MarieExecutor', '--port', '0']);
    try {
      const [line] = await waitReady(marie, 1, 60_000);
      const client = new Client({ host: line!.slice('ready '.length) });
      const [s] = await client.post('/status');
      expect(JSON.parse(String(s?.text))).toMatchObject({
        healthy: true,
        monitor_enabled: false,
        name: 'MarieExecutor',
      });
      client.close();
    } finally {
      marie.child.kill('SIGTERM');
      await marie.exited;
    }
  }, 60_000);

  it('NOT_SERVING over gRPC and 503 over HTTP while unhealthy, SERVING again after; /status says why; a dry run probes', async () => {
    gpu.set('healthy');
    const cfg = JSON.stringify({
      health: { ...health, fail_fast_on_error: false, consecutive_failures: 1000 },
    });
    const marie = runMarie(
      [
        'executor',
        '--uses',
        'GpuWorker',
        '--py-modules',
        MODULE,
        '--uses-with',
        cfg,
        '--protocol',
        'grpc',
        'http',
        '--port',
        '0',
      ],
      { env: { ...gpu.env, JINA_FAIL_DIR: failDir } },
    );
    try {
      const [g, h] = await waitReady(marie, 2, 60_000);
      const grpc = new Client({ host: g!.slice('ready '.length) });
      const http = h!.slice('ready '.length);
      expect(await grpc.dryRun()).toBe(true);
      gpu.set('nodevice');
      await waitFor('NOT_SERVING', async () => !(await grpc.isReady({ timeoutMs: 1000 })));
      const res = await fetch(`${http}/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('no GPU devices');
      const [s] = await grpc.post('/status');
      expect(JSON.parse(String(s?.text))).toMatchObject({
        healthy: false,
        reason: 'no GPU devices',
        source: 'nvml',
      });
      expect(await grpc.dryRun()).toBe(false);
      gpu.set('healthy');
      await waitFor('SERVING again', () => grpc.isReady({ timeoutMs: 1000 }));
      expect((await fetch(`${http}/`)).status).toBe(200);
      grpc.close();
    } finally {
      marie.child.kill('SIGTERM');
      await marie.exited;
    }
  }, 90_000);
});
