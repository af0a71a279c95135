// The job API on a real gateway: `marie flow` with a `jobs:` section serves /api/v1/jobs (in its
// OpenAPI document) and runs jobs through the Flow; a `marie worker` process beside it takes
// jobs of the same queue through the gateway's gRPC port; `marie job` drives it all from the
// command line. Real processes, real sockets, a real Postgres.
import { join } from 'node:path';
import { Client } from '@marie/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';
import {
  type MarieProcess,
  marieCommand,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

const FLOW = join(ROOT, 'tests/jobs/fixtures/jobs-flow.yml');

let url: string;
let drop: () => Promise<void>;
let flow: MarieProcess;
let worker: MarieProcess;
let http: string;
let grpc: string;
let client: Client;

/** `marie job ...` as a user runs it, against this gateway: its exit code, stdout and stderr. */
const marieJob = (...args: string[]) => marieCommand(['job', ...args], { MARIE_GATEWAY: http });

beforeAll(async () => {
  const t = await testDatabase('marie_jobs_gateway');
  url = t.url;
  drop = t.drop;
  flow = runMarie(['flow', '--uses', FLOW], { env: { JOBS_DATABASE_URL: url } });
  const ready = await waitReady(flow, 2, 60_000);
  grpc = ready.find((l) => l.includes('grpc://'))!.slice('ready '.length);
  http = ready.find((l) => l.includes('http://'))!.slice('ready '.length);
  worker = runMarie([
    'worker',
    '--target',
    grpc,
    '--database',
    url,
    '--queue',
    'work=2',
    '--stop-timeout',
    '5000',
    '--monitoring',
    '--port-monitoring',
    '0',
    '--host',
    '127.0.0.1',
  ]);
  const started = Date.now();
  while (!worker.stdout().includes('ready worker')) {
    if (worker.child.exitCode !== null) throw new Error(`worker exited: ${worker.stderr()}`);
    if (Date.now() - started > 30_000) throw new Error(`worker not ready: ${worker.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  client = new Client({ host: grpc, jobs: http });
}, 120_000);

afterAll(async () => {
  client?.close();
  for (const p of [worker, flow]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
  await drop?.();
});

describe('jobs on the gateway (marie flow with jobs:, marie worker, marie job)', () => {
  it('serves the job API in its OpenAPI document', async () => {
    const doc = (await (await fetch(`${http}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths['/api/v1/jobs']!)).toEqual(
      expect.arrayContaining(['get', 'post']),
    );
    expect(Object.keys(doc.paths['/api/v1/jobs/{id}']!)).toEqual(
      expect.arrayContaining(['get', 'delete']),
    );
    expect(doc.paths['/api/v1/jobs/{id}/events']).toBeDefined();
    expect(doc.paths['/ui/api/upload']).toBeDefined();
    expect(doc.paths['/work']).toBeDefined(); // the executor's own endpoint, as before
    const bad = await fetch(`${http}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ endpoint: '/work', priority: 'high' }),
    });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { field: string }).field).toBe('priority');
  });

  it('runs 40 jobs between the gateway and a worker process, each completed once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++)
      ids.push(
        (await client.submitJob({ endpoint: '/work', ref_id: `r${i}`, parameters: { ms: 100 } }))
          .job_id,
      );
    const done = await Promise.all(ids.map((id) => client.waitForJob(id, { timeoutMs: 60_000 })));
    expect(done.map((j) => j.state)).toEqual(ids.map(() => 'completed'));
    const pids = new Set(
      done.map((j) => {
        const r = j.result as { results: Record<string, { job_id: string; pid: number }> };
        expect(r.results.work?.job_id ?? Object.values(r.results)[0]?.job_id).toBe(j.job_id);
        return (r.results.work ?? Object.values(r.results)[0])!.pid;
      }),
    );
    // Both processes took jobs: the gateway's own workers and `marie worker`'s (each runs them
    // through the same executor process, whose pid is in the result); who took which is in the
    // records.
    expect(pids.size).toBe(1);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const rows = await db.query(
        `SELECT executor, count(*)::int AS n, min(status) AS status FROM public.marie_job
          WHERE job_id = ANY($1::text[]) GROUP BY executor`,
        [ids],
      );
      expect(rows.rows.length).toBe(2);
      // The worker's own metrics count what it ran (`--monitoring`, Jina's flag).
      const line = worker
        .stdout()
        .split('\n')
        .find((l) => l.startsWith('monitoring '));
      expect(line).toMatch(/^monitoring http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const metrics = await (await fetch(line!.slice('monitoring '.length))).text();
      const finished = metrics
        .split('\n')
        .filter((l) => l.startsWith('marie_jobs_finished_total{queue="work",outcome="completed"}'))
        .map((l) => Number(l.split(' ').at(-1)));
      expect(finished).toHaveLength(1);
      expect(finished[0]).toBeGreaterThan(0);
      expect(finished[0]).toBeLessThanOrEqual(40);
      expect(rows.rows.reduce((n, r) => n + r.n, 0)).toBe(40);
      expect(rows.rows.every((r) => r.status === 'SUCCEEDED')).toBe(true);
    } finally {
      await db.end();
    }
  }, 90_000);

  it('marie job submit --wait, status, list, cancel and wait from the command line', async () => {
    const waited = await marieJob(
      'submit',
      '--endpoint',
      '/work',
      '--ref-id',
      'cli-1',
      '--parameters',
      '{"ms":50}',
      '--wait',
    );
    expect(waited.code, waited.err).toBe(0);
    const job = JSON.parse(waited.out) as { job_id: string; state: string };
    expect(job.state).toBe('completed');
    expect(waited.err).toContain('completed');

    const status = await marieJob('status', job.job_id);
    expect(JSON.parse(status.out)).toMatchObject({ job_id: job.job_id, ref_id: 'cli-1' });
    const list = await marieJob('list', '--state', 'completed', '--limit', '2');
    expect(JSON.parse(list.out).jobs).toHaveLength(2);

    const failing = await marieJob(
      'submit',
      '--queue',
      'fail',
      '--endpoint',
      '/fail',
      '--retry-limit',
      '0',
      '--wait',
    );
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.out)).toMatchObject({
      state: 'failed',
      error: { message: expect.stringContaining('cannot do') },
    });

    const long = JSON.parse(
      (await marieJob('submit', '--endpoint', '/work', '--parameters', '{"ms":60000}')).out,
    ) as { job_id: string };
    // Cancelled while it runs.
    for (let i = 0; i < 100 && (await client.job(long.job_id)).state !== 'active'; i++)
      await new Promise((r) => setTimeout(r, 100));
    const cancelled = await marieJob('cancel', long.job_id);
    expect(JSON.parse(cancelled.out).state).toBe('cancelled');
    const after = await marieJob('wait', long.job_id);
    expect(after.code).toBe(1);
    expect(JSON.parse(after.out).state).toBe('cancelled');

    const missing = await marieJob('status', '00000000-0000-4000-8000-000000000000');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no job');
    const bad = await marieJob('submit', '--endpoint', '/work', '--start-after', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('start_after');
  }, 120_000);

  it('SIGTERM stops the worker and the gateway cleanly (exit 0)', async () => {
    worker.child.kill('SIGTERM');
    flow.child.kill('SIGTERM');
    const [w, f] = await Promise.all([worker.exited, flow.exited]);
    expect({ worker: w, flow: f }, `${worker.stderr()}\n${flow.stderr()}`).toEqual({
      worker: { code: 0, signal: null },
      flow: { code: 0, signal: null },
    });
  }, 30_000);
});
