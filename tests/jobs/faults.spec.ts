// At least once, finished once: worker processes (tests/jobs/fixtures/worker.ts) take 100 jobs;
// one is killed with SIGKILL in the middle. Its jobs in flight stay active until their expiry
// (expire_in 3 s), are handed out again, and every job ends completed exactly once in pg-boss
// and in the job records.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Jobs } from '@marie/jobs';
import { Database, JobRecords, parsePsqlConfig } from '@marie/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
let t: Awaited<ReturnType<typeof testDatabase>>;
let jobs: Jobs;
let db: Database;
let pool: pg.Pool;
const children: ChildProcess[] = [];

function startWorker(name: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--conditions=@marie/source', '--import', 'tsx', WORKER], {
    env: {
      ...process.env,
      JOBS_DATABASE_URL: t.url,
      WORKER_NAME: name,
      RUN_MS: '150',
      MARIE_LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`worker ${name} exited with ${code} before it was ready`)),
    );
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve(child);
    });
  });
}

beforeAll(async () => {
  t = await testDatabase('marie_jobs_faults');
  db = await Database.connect(parsePsqlConfig(t.psql));
  const records = new JobRecords(db, 'public');
  await records.migrate();
  // The submitting side supervises: it fails or retries runs past their expiry, every second.
  jobs = new Jobs({ connectionString: t.url, records, superviseIntervalSeconds: 1 });
  await jobs.start();
  pool = new pg.Pool({ connectionString: t.url, max: 2 });
  await pool.query('CREATE TABLE runs (job_id uuid, worker text, attempt int)');
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await pool?.end();
  await jobs?.stop({ timeoutMs: 2000 });
  await db?.close();
  await t?.drop();
});

describe('worker faults', () => {
  it('kill -9 of a worker during 100 jobs: all complete, none twice', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 100; i++)
      ids.push(
        (
          await jobs.submit({
            queue: 'faults',
            expire_in: 3,
            retry_delay: 0,
            retry_backoff: false,
            parameters: { i },
          })
        ).job_id,
      );
    // Exactly once is checked on pg-boss's state (completed once) and on the rows each run wrote.
    const t0 = Date.now();
    const [a] = await Promise.all([startWorker('a'), startWorker('b')]);
    // Kill `a` once it has some runs and still holds jobs.
    await until(
      async () => (await count(`SELECT count(*)::int AS n FROM runs WHERE worker = 'a'`)) >= 12,
    );
    a.kill('SIGKILL');
    await once(a, 'exit');
    const tKill = Date.now();
    const killedAt = await count(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'faults' AND state = 'completed'`,
    );
    await until(
      async () =>
        (await count(
          `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'faults' AND state = 'completed'`,
        )) === 100,
      60_000,
    );
    console.log(
      `workers up and killing: ${tKill - t0} ms; the rest after the kill: ${Date.now() - tKill} ms`,
    );
    const states = await pool.query(
      `SELECT state::text, count(*)::int AS n FROM pgboss.job WHERE name = 'faults' GROUP BY state`,
    );
    expect(states.rows).toEqual([{ state: 'completed', n: 100 }]);
    const runs = await pool.query(
      'SELECT job_id, count(*)::int AS n, max(attempt) AS attempts FROM runs GROUP BY job_id',
    );
    expect(runs.rows).toHaveLength(100);
    const rerun = runs.rows.filter((r) => r.n > 1);
    console.log(
      `kill -9 after ${killedAt} of 100 completed: ${rerun.length} jobs ran again after their expiry (attempt 2), none completed twice`,
    );
    // What was in flight on the killed worker ran again, as a second attempt; nothing else did.
    for (const r of rerun) expect(r.attempts).toBe(2);
    const byB = await pool.query(
      `SELECT output FROM pgboss.job WHERE name = 'faults' AND id = ANY($1::uuid[])`,
      [rerun.map((r) => r.job_id)],
    );
    for (const row of byB.rows) expect(row.output).toEqual({ results: { by: 'b' }, docs: [] });
    const b = children[1]!;
    b.kill('SIGTERM');
    const [code] = await once(b, 'exit');
    expect(code).toBe(0);
  }, 120_000);

  it("a killed worker's long runs are retried once its heartbeat is stale, not after expire_in", async () => {
    // Queues of this Jobs want a heartbeat every 10 s; the jobs may run for 15 minutes.
    const beats = new Jobs({
      connectionString: t.url,
      heartbeatSeconds: 10,
      superviseIntervalSeconds: 1,
    });
    try {
      const ids = [];
      for (let i = 0; i < 2; i++)
        ids.push((await beats.submit({ queue: 'beats', retry_delay: 0 })).job_id);
      const env = { QUEUE: 'beats', CONCURRENCY: '2', RUN_MS: '3000' };
      const a = await startWorker('beat-a', env);
      await until(
        async () =>
          (await count(`SELECT count(*)::int AS n FROM runs WHERE worker = 'beat-a'`)) === 2,
      );
      a.kill('SIGKILL');
      await once(a, 'exit');
      const killed = Date.now();
      const b = await startWorker('beat-b', env);
      await until(
        async () =>
          (await count(
            `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'beats' AND state = 'completed'`,
          )) === 2,
        60_000,
      );
      const waited = Date.now() - killed;
      console.log(
        `heartbeat 10 s: the killed worker's 2 runs completed elsewhere ${waited} ms after the kill`,
      );
      expect(waited).toBeLessThan(60_000); // expire_in is 15 minutes: only the heartbeat explains it
      const runs = await pool.query(
        `SELECT worker, attempt FROM runs WHERE job_id = ANY($1::uuid[]) ORDER BY worker, attempt`,
        [ids],
      );
      expect(runs.rows).toEqual([
        { worker: 'beat-a', attempt: 1 },
        { worker: 'beat-a', attempt: 1 },
        { worker: 'beat-b', attempt: 2 },
        { worker: 'beat-b', attempt: 2 },
      ]);
      b.kill('SIGTERM');
      const [code] = await once(b, 'exit');
      expect(code).toBe(0);
    } finally {
      await beats.stop({ timeoutMs: 2000 });
    }
  }, 120_000);
});

async function count(sql: string): Promise<number> {
  return (await pool.query(sql)).rows[0].n;
}
async function until(fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
