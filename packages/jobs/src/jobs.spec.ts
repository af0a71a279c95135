import { Executor, type RequestContext, RequestHandler, requests } from '@marie/core';
import type { JobView } from '@marie/jobs-contract';
import { Database, JobRecords, PageDoc, parsePsqlConfig } from '@marie/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../storage/test/support/postgres.js';
import { type JobEvent, Jobs } from './jobs.js';
import { processorTarget } from './service.js';
import { JobWorker } from './worker.js';

// A real executor, served in process by a RequestHandler with the same validation and return
// rules as over the network; processorTarget hands the worker the whole answer (onDone), as a
// Client does.
class Extract extends Executor {
  @requests({ on: '/document/extract', requestSchema: PageDoc })
  extract(docs: { asset_key?: string }[], ctx: RequestContext) {
    return {
      seen: ctx.parameters.job_id,
      ref: ctx.parameters.ref_id,
      asset: docs[0]?.asset_key,
      mode: ctx.parameters.mode,
    };
  }
}
let url: string;
let drop: () => Promise<void>;
let db: Database;
let records: JobRecords;
const events: JobEvent[] = [];
let jobs: Jobs;

beforeAll(async () => {
  const t = await testDatabase('marie_jobs');
  url = t.url;
  drop = t.drop;
  db = await Database.connect(parsePsqlConfig(t.psql));
  records = new JobRecords(db, 'public');
  await records.migrate();
  jobs = new Jobs({
    connectionString: url,
    records,
    notify: async (e) => events.push(e),
    superviseIntervalSeconds: 1,
  });
  await jobs.start();
});

// Workers a test started, stopped here too when the test failed before it could.
const workers: JobWorker[] = [];
const worker = (...args: ConstructorParameters<typeof JobWorker>) => {
  const w = new JobWorker(...args);
  workers.push(w);
  return w;
};

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop({ timeoutMs: 1000 })));
  await jobs?.stop({ timeoutMs: 2000 });
  await db?.close();
  await drop?.();
});

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const settled = (id: string, state: JobView['state']) =>
  until(`job ${id} ${state}`, async () => {
    const j = await jobs.get(id);
    return j?.state === state ? j : undefined;
  });

describe('submitting', () => {
  it('queues a job, answers its id, and shows it created; the same idempotency key returns the same job', async () => {
    const a = await jobs.submit({
      endpoint: '/document/extract',
      ref_id: 'r1',
      ref_type: 'doc',
      idempotency_key: 'k-1',
      priority: 3,
    });
    expect(a.created).toBe(true);
    const b = await jobs.submit({
      endpoint: '/document/extract',
      ref_id: 'other',
      idempotency_key: 'k-1',
    });
    expect(b).toEqual({ job_id: a.job_id, created: false });
    // Submitted at once, one key: one job (more submits than the pool has connections: 4).
    const raced = await Promise.all(
      Array.from({ length: 12 }, () => jobs.submit({ queue: 'race', idempotency_key: 'k-race' })),
    );
    expect(new Set(raced.map((r) => r.job_id)).size).toBe(1);
    expect(raced.filter((r) => r.created)).toHaveLength(1);
    // The losers left nothing behind: their index, job and record rows were one transaction.
    const rows = await jobs.pool.query(
      `SELECT (SELECT count(*)::int FROM pgboss.job WHERE name = 'race') AS jobs,
              (SELECT count(*)::int FROM public.marie_job WHERE job_id = $1) AS records`,
      [raced[0]!.job_id],
    );
    expect(rows.rows[0]).toEqual({ jobs: 1, records: 1 });
    const view = await jobs.get(a.job_id);
    expect(view).toMatchObject({
      job_id: a.job_id,
      queue: 'document.extract',
      state: 'created',
      attempts: 0,
      retry_limit: 2,
      priority: 3,
      endpoint: '/document/extract',
      ref_id: 'r1',
      ref_type: 'doc',
      started_on: null,
    });
    expect((await records.get(a.job_id))?.status).toBe('PENDING');
    expect(events.find((e) => e.jobid === a.job_id)).toMatchObject({
      event: 'document.extract.scheduled',
      status: 'INFO',
      jobtag: 'doc',
    });
    expect(await jobs.get('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    expect(await jobs.get('not-a-uuid')).toBeUndefined();
  });

  it('submits the same way in an explicit transaction (submitInOneTrip: false)', async () => {
    const tx = new Jobs({ connectionString: url, records, submitInOneTrip: false });
    try {
      const raced = await Promise.all(
        Array.from({ length: 8 }, () =>
          tx.submit({ queue: 'race-tx', idempotency_key: 'k-race-tx', ref_id: 'tx' }),
        ),
      );
      expect(new Set(raced.map((r) => r.job_id)).size).toBe(1);
      expect(raced.filter((r) => r.created)).toHaveLength(1);
      expect(await tx.get(raced[0]!.job_id)).toMatchObject({ queue: 'race-tx', ref_id: 'tx' });
      expect((await records.get(raced[0]!.job_id))?.status).toBe('PENDING');
      const n = await tx.pool.query(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'race-tx'`,
      );
      expect(n.rows[0].n).toBe(1);
    } finally {
      await tx.stop({ timeoutMs: 2000 });
    }
  });

  it('names the field of a bad body', async () => {
    const bad = async (body: unknown) => {
      try {
        await jobs.submit(body);
      } catch (err) {
        return `${(err as { code: string }).code} ${(err as { field: string }).field}: ${(err as Error).message}`;
      }
      return 'accepted';
    };
    expect(await bad({})).toBe(
      'invalid_argument endpoint: endpoint: an endpoint or a queue is required',
    );
    expect(await bad({ endpoint: 'extract' })).toMatch(/^invalid_argument endpoint: endpoint: /);
    expect(await bad({ endpoint: '/x', retry_limit: -1 })).toMatch(
      /^invalid_argument retry_limit: /,
    );
    expect(await bad({ endpoint: '/x', priority: 1.5 })).toMatch(/^invalid_argument priority: /);
    expect(await bad({ endpoint: '/x', parameters: [] })).toMatch(/^invalid_argument parameters: /);
    expect(await bad({ endpoint: '/x', start_after: 'soon' })).toBe(
      'invalid_argument start_after: start_after: not a date-time',
    );
    expect(await bad({ endpoint: '/x', colour: 'red' })).toBe(
      'invalid_argument colour: colour: unknown field',
    );
    expect(await bad({ queue: 'a b' })).toMatch(/^invalid_argument queue: /);
    expect(await bad([1])).toBe('invalid_argument body: the job must be a JSON object');
  });

  it('lists newest first, by state and queue, a page at a time', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++)
      ids.push((await jobs.submit({ queue: 'listing', ref_id: `l${i}` })).job_id);
    const page1 = await jobs.list({ queue: 'listing', limit: 3 });
    expect(page1.map((j) => j.job_id)).toEqual(ids.slice(2).reverse());
    const page2 = await jobs.list({ queue: 'listing', limit: 3, after: page1.at(-1)!.job_id });
    expect(page2.map((j) => j.job_id)).toEqual(ids.slice(0, 2).reverse());
    expect((await jobs.list({ queue: 'listing', state: 'completed' })).length).toBe(0);
    expect((await jobs.list({ queue: 'listing', state: 'created' })).length).toBe(5);
    await expect(jobs.list({ state: 'done' as never })).rejects.toThrow(
      'state: "done" is not one of',
    );
  });
});

describe('workers', () => {
  it('500 jobs across 3 workers (each its own pg-boss): each completed exactly once', async () => {
    const conn = new pg.Pool({ connectionString: url, max: 2 });
    await conn.query('CREATE TABLE runs (job_id uuid, worker text)');
    const instances = Array.from(
      { length: 3 },
      () => new Jobs({ connectionString: url, records, max: 4 }),
    );
    const workers = instances.map((j, w) =>
      worker(j, {
        queues: { bulk: { concurrency: 4 } },
        pollingIntervalSeconds: 0.5,
        run: async (job) => {
          await conn.query('INSERT INTO runs VALUES ($1, $2)', [job.id, `w${w}`]);
          return { results: { n: job.data.parameters.n }, docs: [] };
        },
      }),
    );
    await Promise.all(workers.map((w) => w.start()));
    const ids = [];
    for (let i = 0; i < 500; i++)
      ids.push((await jobs.submit({ queue: 'bulk', parameters: { n: i } })).job_id);
    await until(
      '500 completed',
      async () => {
        const r = await conn.query(
          `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bulk' AND state = 'completed'`,
        );
        return r.rows[0].n === 500;
      },
      90_000,
    );
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(instances.map((j) => j.stop()));
    const runs = await conn.query('SELECT job_id, count(*)::int AS n FROM runs GROUP BY job_id');
    expect(runs.rows).toHaveLength(500);
    expect(runs.rows.every((r) => r.n === 1)).toBe(true);
    const byWorker = await conn.query(
      'SELECT worker, count(*)::int AS n FROM runs GROUP BY worker ORDER BY worker',
    );
    console.log(`500 jobs: ${byWorker.rows.map((r) => `${r.worker} ran ${r.n}`).join(', ')}`);
    expect(byWorker.rows.length).toBeGreaterThan(1);
    const rec = await db.query(
      `SELECT status, attempts, count(*)::int AS n FROM public.marie_job WHERE job_id = ANY($1::text[]) GROUP BY status, attempts`,
      [ids],
    );
    expect(rec.rows).toEqual([{ status: 'SUCCEEDED', attempts: 1, n: 500 }]);
    const one = await jobs.get(ids[7]!);
    expect(one).toMatchObject({
      state: 'completed',
      attempts: 1,
      result: { results: { n: 7 }, docs: [] },
    });
    await conn.end();
  }, 120_000);

  it("runs a job through its endpoint on the target: the answer's __results__ and documents are its result", async () => {
    const w = worker(jobs, {
      queues: ['document.extract'],
      target: processorTarget(new RequestHandler(new Extract())),
    });
    await w.start();
    const { job_id } = await jobs.submit({
      endpoint: '/document/extract',
      asset_key: 's3://bucket/scan.pdf',
      ref_id: 'doc-9',
      parameters: { mode: 'line' },
    });
    const done = await settled(job_id, 'completed');
    await w.stop();
    expect(done.result).toEqual({
      results: {
        Extract: { seen: job_id, ref: 'doc-9', asset: 's3://bucket/scan.pdf', mode: 'line' },
      },
      docs: [expect.objectContaining({ asset_key: 's3://bucket/scan.pdf' })],
    });
    expect((await records.get(job_id))?.status).toBe('SUCCEEDED');
  }, 30_000);

  it('five workers on one Jobs (a pool of 4) leave it room to submit and run', async () => {
    const many = Array.from({ length: 5 }, (_, i) =>
      worker(jobs, { queues: [`many-${i}`], run: async () => ({ results: { i }, docs: [] }) }),
    );
    await Promise.all(many.map((w) => w.start()));
    const { job_id } = await jobs.submit({ queue: 'many-4' });
    expect((await settled(job_id, 'completed')).result).toEqual({ results: { i: 4 }, docs: [] });
    await Promise.all(many.map((w) => w.stop()));
  }, 30_000);

  it('a job that always fails ends failed after retry_limit + 1 attempts, with the error', async () => {
    let calls = 0;
    const w = worker(jobs, {
      queues: ['failing'],
      run: async (job) => {
        calls++;
        throw new Error(`bad page (attempt ${job.attempt})`);
      },
    });
    await w.start();
    const { job_id } = await jobs.submit({
      queue: 'failing',
      retry_limit: 2,
      retry_delay: 0,
      retry_backoff: false,
    });
    const failed = await settled(job_id, 'failed');
    await w.stop();
    expect(calls).toBe(3);
    expect(failed).toMatchObject({ attempts: 3, error: { message: 'bad page (attempt 3)' } });
    const rec = await records.get(job_id);
    expect(rec).toMatchObject({
      status: 'FAILED',
      attempts: 3,
      error: { message: 'bad page (attempt 3)' },
    });
    expect(events.filter((e) => e.jobid === job_id).map((e) => e.event)).toEqual([
      'failing.scheduled',
      'failing.started',
      'failing.started',
      'failing.started',
      'failing.failed',
    ]);
  }, 60_000);

  it('cancelling a running job fires its signal; a terminal job stays as it is', async () => {
    let seen: ((v: string) => void) | undefined;
    const aborted = new Promise<string>((r) => {
      seen = r;
    });
    let started: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const w = worker(jobs, {
      queues: ['slow'],
      run: (job) =>
        new Promise((_, reject) => {
          started();
          job.signal.addEventListener('abort', () => {
            seen!((job.signal.reason as Error).message);
            reject(job.signal.reason);
          });
        }),
    });
    await w.start();
    const { job_id } = await jobs.submit({ queue: 'slow' });
    await running;
    const cancelled = await jobs.cancel(job_id);
    expect(cancelled?.state).toBe('cancelled');
    expect(await aborted).toBe(`job ${job_id} was cancelled`);
    expect((await records.get(job_id))?.status).toBe('STOPPED');
    // Cancelled stays cancelled: not retried, not failed by the run's rejection.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await jobs.get(job_id))?.state).toBe('cancelled');
    expect((await jobs.cancel(job_id))?.state).toBe('cancelled');
    expect(await jobs.cancel('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    await w.stop();
  }, 30_000);

  it('a run that outlives expire_in ends expired', async () => {
    const w = worker(jobs, {
      queues: ['stuck'],
      run: (job) =>
        new Promise((_, reject) =>
          job.signal.addEventListener('abort', () => reject(job.signal.reason)),
        ),
    });
    await w.start();
    const { job_id } = await jobs.submit({ queue: 'stuck', expire_in: 1, retry_limit: 0 });
    const expired = await settled(job_id, 'expired');
    expect(expired.error?.message).toBe('handler execution exceeded 1s');
    expect((await jobs.list({ queue: 'stuck', state: 'expired' })).map((j) => j.job_id)).toEqual([
      job_id,
    ]);
    await w.stop();
  }, 30_000);
});
