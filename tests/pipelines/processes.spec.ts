// DAGs across worker processes (tests/pipelines/fixtures/dag-worker.ts) on one real Postgres:
// 200 DAGs of a map over 3 pages and a branch, every node completed once and its output written
// once; a worker killed (SIGKILL) in the middle of a node; Postgres itself restarted in the middle
// of a run. Nothing lost, nothing recorded twice.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Jobs } from '@marie/jobs';
import { Dags, plan } from '@marie/pipelines';
import { PDFDocument } from 'pdf-lib';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  testDatabase,
  throwawayCluster,
} from '../../packages/storage/test/support/postgres.js';

const WORKER = fileURLToPath(new URL('./fixtures/dag-worker.ts', import.meta.url));
let dir: string;
let pdf: string;
const children: ChildProcess[] = [];

function startWorker(
  url: string,
  name: string,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--conditions=@marie/source', '--import', 'tsx', WORKER], {
    env: {
      ...process.env,
      JOBS_DATABASE_URL: url,
      WORKER_NAME: name,
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

async function stopWorkers(): Promise<void> {
  await Promise.all(
    children.splice(0).map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 8000).unref();
        }),
    ),
  );
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 120_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The plan: a map over pages, a node over their outputs, a branch on the input, a merge. */
const PLAN = plan('pages')
  .map('read', 'tools://read', { concurrency: 3 })
  .executor('sum', 'tools://sum', { needs: ['read'], parameters: { pages: '$.nodes.read.output' } })
  .branch('route', [{ when: { '$.input.big': true }, to: ['a'] }], {
    needs: ['sum'],
    otherwise: ['b'],
  })
  .executor('a', 'tools://a', { needs: ['route'] })
  .executor('b', 'tools://b', { needs: ['route'] })
  .merge('end', { needs: ['a', 'b'] })
  .build();

/** A Dags on `url` for the test's side: submits, and supervises (pg-boss's monitor, the sweep). */
function submitter(url: string) {
  const jobs = new Jobs({
    connectionString: url,
    superviseIntervalSeconds: 1,
    heartbeatSeconds: 10,
  });
  const dags = new Dags({ jobs, plans: [PLAN] });
  return { jobs, dags };
}

/** What must hold of every DAG once all ended. */
async function checkOnce(pool: pg.Pool, count: number) {
  const q = async (sql: string) => (await pool.query(sql)).rows;
  expect(await q(`SELECT state, count(*)::int AS n FROM pgboss.marie_dag GROUP BY state`)).toEqual([
    { state: 'completed', n: count },
  ]);
  // Every node ran to one end: completed once, or skipped (the branch not taken).
  const nodes = await q(
    `SELECT state, runs, count(*)::int AS n FROM pgboss.marie_dag_node GROUP BY state, runs ORDER BY state`,
  );
  expect(nodes).toEqual([
    { state: 'completed', runs: 1, n: count * 8 },
    { state: 'skipped', runs: 0, n: count },
  ]);
  // One output per completed node, none for another attempt.
  expect(
    await q(`SELECT count(*)::int AS outputs, count(DISTINCT (dag_id, node_id))::int AS nodes
             FROM pgboss.marie_dag_output`),
  ).toEqual([{ outputs: count * 8, nodes: count * 8 }]);
  // The branch saw the input: `a` ran exactly where big was true.
  expect(
    await q(`SELECT count(*)::int AS n FROM pgboss.marie_dag d JOIN pgboss.marie_dag_node n
             ON n.dag_id = d.id AND n.node_id = 'a'
             WHERE (n.state = 'completed') <> (d.parameters->>'big' = 'true')`),
  ).toEqual([{ n: 0 }]);
  // pg-boss's jobs agree: none left blocked or waiting.
  expect(
    await q(`SELECT count(*)::int AS n FROM pgboss.job WHERE name LIKE 'dag.%'
             AND state::text NOT IN ('completed', 'cancelled')`),
  ).toEqual([{ n: 0 }]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'marie-dag-procs-'));
  const doc = await PDFDocument.create();
  for (let i = 0; i < 3; i++) doc.addPage([100, 100]);
  pdf = join(dir, 'three.pdf');
  writeFileSync(pdf, await doc.save());
});

afterEach(stopWorkers);
afterAll(stopWorkers);

describe('DAGs across worker processes', () => {
  it('200 DAGs (a map over 3 pages and a branch) across 3 workers: every node completed once, every output written once', async () => {
    const t = await testDatabase('marie_dag_procs');
    const { jobs, dags } = submitter(t.url);
    const pool = new pg.Pool({ connectionString: t.url, max: 2 });
    try {
      await dags.start();
      await pool.query('CREATE TABLE runs (dag_id uuid, node_id text, worker text)');
      await Promise.all(['w1', 'w2', 'w3'].map((w) => startWorker(t.url, w)));
      const started = Date.now();
      for (let i = 0; i < 200; i++)
        await dags.submit({ plan: 'pages', asset_key: pdf, parameters: { big: i % 2 === 0 } });
      await until('200 DAGs to end', async () => {
        const r = await pool.query(
          `SELECT count(*)::int AS n FROM pgboss.marie_dag WHERE state IN ('completed', 'failed', 'cancelled')`,
        );
        return r.rows[0].n === 200;
      });
      const seconds = (Date.now() - started) / 1000;
      await checkOnce(pool, 200);
      // Each executor run happened once (5 per DAG: 3 pages, sum, a or b), spread over the workers.
      const runs = (
        await pool.query(
          `SELECT count(*)::int AS n, count(DISTINCT (dag_id, node_id))::int AS d,
                  count(DISTINCT worker)::int AS workers FROM runs`,
        )
      ).rows[0];
      expect(runs).toEqual({ n: 1000, d: 1000, workers: 3 });
      console.log(
        `200 DAGs (1,800 node runs, 1,000 on the executor) across 3 workers in ${seconds.toFixed(1)} s`,
      );
    } finally {
      await stopWorkers();
      await pool.end();
      await dags.stop();
      await jobs.stop({ timeoutMs: 2000 });
      await t.drop();
    }
  }, 240_000);

  it('a worker killed with SIGKILL in the middle of a node: the node runs again once its heartbeat is stale, its output written once', async () => {
    const t = await testDatabase('marie_dag_kill');
    const { jobs, dags } = submitter(t.url);
    const pool = new pg.Pool({ connectionString: t.url, max: 2 });
    try {
      await dags.start();
      await pool.query('CREATE TABLE runs (dag_id uuid, node_id text, worker text)');
      const slow = { SLOW: 'sum', SLOW_MS: '3000' };
      const victim = await startWorker(t.url, 'victim', { ...slow, SLOTS: '8' });
      for (let i = 0; i < 10; i++)
        await dags.submit({ plan: 'pages', asset_key: pdf, parameters: { big: i % 2 === 0 } });
      // The victim is in the middle of `sum` nodes: kill it there, then start a survivor.
      await until('the victim to run sum nodes', async () => {
        const r = await pool.query(
          `SELECT count(*)::int AS n FROM runs WHERE node_id = 'sum' AND worker = 'victim'`,
        );
        return r.rows[0].n >= 1;
      });
      victim.kill('SIGKILL');
      await new Promise((r) => victim.once('exit', r));
      const killedAt = Date.now();
      await startWorker(t.url, 'survivor', slow);
      await until(
        '10 DAGs to end',
        async () =>
          (
            await pool.query(
              `SELECT count(*)::int AS n FROM pgboss.marie_dag WHERE state = 'completed'`,
            )
          ).rows[0].n === 10,
        120_000,
      );
      await checkOnce(pool, 10);
      // The victim's `sum` runs were run again by the survivor (after the 10 s heartbeat).
      const again = (
        await pool.query(
          `SELECT count(*)::int AS n FROM (SELECT dag_id FROM runs WHERE node_id = 'sum'
             GROUP BY dag_id HAVING count(*) = 2 AND bool_or(worker = 'victim')) x`,
        )
      ).rows[0].n;
      expect(again).toBeGreaterThanOrEqual(1);
      console.log(
        `${again} nodes killed mid-run ran again; all 10 DAGs done ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`,
      );
    } finally {
      await stopWorkers();
      await pool.end();
      await dags.stop();
      await jobs.stop({ timeoutMs: 2000 });
      await t.drop();
    }
  }, 240_000);

  it('Postgres restarted in the middle of a run: every DAG still completes, nothing recorded twice', async () => {
    let cluster: Cluster | undefined;
    try {
      cluster = await throwawayCluster();
    } catch (err) {
      throw new Error(
        `a throwaway Postgres (initdb, pg_ctl) is needed here: ${(err as Error).message}`,
      );
    }
    const { jobs, dags } = submitter(cluster.url);
    const pool = new pg.Pool({ connectionString: cluster.url, max: 2 });
    pool.on('error', () => {});
    try {
      await dags.start();
      await pool.query('CREATE TABLE runs (dag_id uuid, node_id text, worker text)');
      await Promise.all(
        ['r1', 'r2'].map((w) => startWorker(cluster!.url, w, { SLOW: 'sum', SLOW_MS: '800' })),
      );
      for (let i = 0; i < 20; i++)
        await dags.submit({ plan: 'pages', asset_key: pdf, parameters: { big: i % 2 === 0 } });
      await until('some nodes to have run', async () => {
        const r = await pool.query(`SELECT count(*)::int AS n FROM runs WHERE node_id = 'sum'`);
        return r.rows[0].n >= 2;
      });
      await cluster.stop('fast');
      await new Promise((r) => setTimeout(r, 1500));
      await cluster.start();
      await until(
        '20 DAGs to end',
        async () =>
          (
            await pool.query(
              `SELECT count(*)::int AS n FROM pgboss.marie_dag WHERE state = 'completed'`,
            )
          ).rows[0].n === 20,
        180_000,
      );
      await checkOnce(pool, 20);
    } finally {
      await stopWorkers();
      await pool.end();
      await dags.stop().catch(() => {});
      await jobs.stop({ timeoutMs: 2000 }).catch(() => {});
      cluster?.destroy();
    }
  }, 300_000);
});
