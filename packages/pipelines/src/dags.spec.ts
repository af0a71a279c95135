import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Executor, type RequestContext, RequestHandler, requests } from '@marie/core';
import { type JobEvent, Jobs, processorTarget } from '@marie/jobs';
import type { DagView } from '@marie/jobs-contract';
import { Database, JobRecords, PageDoc, parsePsqlConfig, StorageManager } from '@marie/storage';
import { PDFDocument } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../storage/test/support/postgres.js';
import { plan } from './builder.js';
import { Dags } from './dags.js';
import { parsePlan } from './plan.js';
import { DagWorker } from './worker.js';

// Real Postgres, real pg-boss, executors served in process by a RequestHandler (the same
// validation and return rules as over the network).

/** Runs per node id, across every test (a retry must not run a completed node again). */
const ran = new Map<string, number>();
const count = (ctx: RequestContext) => {
  const key = `${ctx.parameters.dag_id}/${ctx.parameters.node_id}`;
  ran.set(key, (ran.get(key) ?? 0) + 1);
  return ran.get(key)!;
};
/** Nodes told to fail until this many attempts (by `fail_until` in their parameters). */
class Tools extends Executor {
  @requests({ on: '/page/read', requestSchema: PageDoc })
  read(docs: { asset_key?: string; pages?: number[] }[], ctx: RequestContext) {
    count(ctx);
    return {
      page: ctx.parameters.page,
      asked: docs[0]?.pages,
      text: `page ${ctx.parameters.page}`,
    };
  }

  @requests({ on: '/echo' })
  echo(_docs: object[], ctx: RequestContext) {
    const n = count(ctx);
    const until = Number(ctx.parameters.fail_until ?? 0);
    if (ctx.parameters.fail === true || n <= until) throw new Error(`echo failed (run ${n})`);
    return { value: ctx.parameters.value ?? null, run: n };
  }

  @requests({ on: '/slow' })
  async slow(_docs: object[], ctx: RequestContext) {
    count(ctx);
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, Number(ctx.parameters.ms ?? 30_000));
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      });
    });
    return { slept: true };
  }
}

let url: string;
let drop: () => Promise<void>;
let jobs: Jobs;
let dags: Dags;
let worker: DagWorker;
const events: JobEvent[] = [];
let dir: string;
let pdf: string;
let db: Database;
let records: JobRecords;

async function pdfOf(pages: number): Promise<string> {
  const doc = await PDFDocument.create();
  for (let i = 0; i < pages; i++) doc.addPage([200, 200]).drawText(`page ${i}`, { x: 20, y: 100 });
  const file = join(dir, `doc-${pages}.pdf`);
  writeFileSync(file, await doc.save());
  return file;
}

beforeAll(async () => {
  const t = await testDatabase('marie_dags');
  url = t.url;
  drop = t.drop;
  dir = mkdtempSync(join(tmpdir(), 'marie-dags-'));
  pdf = await pdfOf(3);
  db = await Database.connect(parsePsqlConfig(t.psql));
  records = new JobRecords(db, 'public');
  await records.migrate();
  jobs = new Jobs({
    connectionString: url,
    records,
    notify: async (e) => events.push(e),
    superviseIntervalSeconds: 1,
  });
  dags = new Dags({
    jobs,
    storage: new StorageManager({ file: { roots: [dir] } }),
    outputs: `file://${dir}/outputs`,
    inlineLimit: 2048,
  });
  await dags.start();
  const target = processorTarget(new RequestHandler(new Tools()));
  worker = new DagWorker(dags, {
    executors: { tools: { target, slots: 4 }, flow: { target, slots: 2 } },
    pollMs: 1000,
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop({ timeoutMs: 1000 });
  await dags?.stop();
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
    await new Promise((r) => setTimeout(r, 50));
  }
}
const ended = (id: string) =>
  until(`dag ${id} to end`, async () => {
    const d = await dags.get(id);
    return d && ['completed', 'failed', 'cancelled'].includes(d.state) ? d : undefined;
  });
const node = (d: DagView, id: string) => d.nodes!.find((n) => n.node_id === id)!;

describe('DAG tables', () => {
  it('a database from before is brought up to date, by processes starting together', async () => {
    const t = await testDatabase('marie_dags_schema');
    const made: { jobs: Jobs; dags: Dags }[] = [];
    const open = () => {
      const j = new Jobs({ connectionString: t.url });
      const d = new Dags({ jobs: j });
      made.push({ jobs: j, dags: d });
      return d;
    };
    try {
      await open().start();
      // The shape before: an index on the node rows' state (so every state change wrote index
      // entries) and no room left on their pages.
      await made[0]!.dags.pool.query(
        `CREATE INDEX marie_dag_node_live ON pgboss.marie_dag_node (dag_id)
           WHERE state IN ('pending', 'active');
         ALTER TABLE pgboss.marie_dag_node RESET (fillfactor)`,
      );
      await Promise.all([open().start(), open().start(), open().start()]);
      const r = await made[0]!.dags.pool.query(
        `SELECT c.reloptions, (SELECT count(*)::int FROM pg_indexes
            WHERE schemaname = 'pgboss' AND indexname = 'marie_dag_node_live') AS old
         FROM pg_class c WHERE c.oid = 'pgboss.marie_dag_node'::regclass`,
      );
      expect(r.rows[0]).toEqual({ reloptions: ['fillfactor=50'], old: 0 });
    } finally {
      for (const m of made) {
        await m.dags.stop();
        await m.jobs.stop({ graceful: false, timeoutMs: 1000 });
      }
      await t.drop();
    }
  });
});

describe('DAG runs', () => {
  it('runs a map over pages into a branch on an upstream output, outputs passed down, each node once', async () => {
    const p = plan('pages-branch')
      .map('read', 'tools://page/read', { concurrency: 2 })
      .executor('sum', 'tools://echo', {
        needs: ['read'],
        parameters: { value: '$.nodes.read.output' },
      })
      .branch(
        'route',
        [{ when: { '$.nodes.read.output[2].results.Tools.text': 'page 2' }, to: ['big'] }],
        { needs: ['sum'], otherwise: ['small'] },
      )
      .executor('big', 'tools://echo', { needs: ['route'], parameters: { value: 'big' } })
      .executor('small', 'tools://echo', { needs: ['route'], parameters: { value: 'small' } })
      .merge('end', { needs: ['big', 'small'] })
      .build();
    dags.addPlan(p);
    const { dag_id, created } = await dags.submit({
      plan: 'pages-branch',
      asset_key: pdf,
      ref_id: 'r1',
      ref_type: 'doc',
    });
    expect(created).toBe(true);
    const d = await ended(dag_id);
    expect(d.state).toBe('completed');
    expect(d.pages).toBe(3);
    expect(d.nodes_done).toBe(d.nodes_total);
    // Each page read its own page of the asset.
    for (const i of [0, 1, 2])
      expect(node(d, `read[${i}]`).output).toMatchObject({
        results: { Tools: { page: i, asked: [i], text: `page ${i}` } },
        docs: [{ asset_key: pdf, pages: [i] }],
      });
    // The fan-in handed every page's output to the next node, in page order.
    const sum = node(d, 'sum').output as {
      results: { Tools: { value: { results: { Tools: { page: number } } }[] } };
    };
    expect(sum.results.Tools.value.map((v) => v.results.Tools.page)).toEqual([0, 1, 2]);
    // The branch saw the upstream output: `big` ran, `small` was skipped, the merge went on.
    expect(node(d, 'route').output).toEqual({ chosen: ['big'] });
    expect(node(d, 'big').state).toBe('completed');
    expect(node(d, 'small').state).toBe('skipped');
    expect(node(d, 'end').state).toBe('completed');
    for (const n of d.nodes!.filter((n) => n.state === 'completed')) expect(n.runs).toBe(1);
    for (const [k, v] of ran) if (k.startsWith(dag_id)) expect(v, k).toBe(1);
    expect(events.filter((e) => e.jobid === dag_id).map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'pages-branch.scheduled',
        'pages-branch.started',
        'pages-branch.completed',
        'pages-branch.big.completed',
      ]),
    );
    // The metrics: DAGs by state (Postgres), node runs and their time, unblocks (this process).
    const families = new Map((await dags.metrics()).map((f) => [f.name, f]));
    const completed = families
      .get('marie_dags')!
      .samples.find((x) => x.labels?.state === 'completed')!.value;
    expect(completed).toBeGreaterThanOrEqual(1);
    expect(families.get('marie_dag_node_runs_total')!.samples[0]!.value).toBeGreaterThanOrEqual(8);
    expect(families.get('marie_dag_node_run_seconds_total')!.samples[0]!.value).toBeGreaterThan(0);
    expect(families.get('marie_dag_unblocked_total')!.samples[0]!.value).toBeGreaterThanOrEqual(5);
    // Marie's job record of each executor run, as for jobs.
    await until(
      "read[1]'s record SUCCEEDED",
      async () => (await records.get(node(d, 'read[1]').job_id))?.status === 'SUCCEEDED',
    );
    expect((await records.get(node(d, 'big').job_id))?.refId).toBe('r1');
    // Outputs are the DAG's own: still readable once pg-boss deleted its jobs.
    await dags.pool.query(`DELETE FROM pgboss.job WHERE data->>'dag_id' = $1`, [dag_id]);
    const later = await dags.get(dag_id);
    expect(node(later!, 'read[2]').output).toEqual(node(d, 'read[2]').output);
    expect(node(later!, 'route').state).toBe('completed');
    // One output row per node run that completed, stored once.
    const outs = await dags.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT node_id)::int AS d FROM pgboss.marie_dag_output WHERE dag_id = $1`,
      [dag_id],
    );
    expect(outs.rows[0].n).toBe(outs.rows[0].d);
  });

  it('fails the DAG under fail_dag and cancels the rest; retry runs only the failed node and its dependents', async () => {
    dags.addPlan(
      plan('retry-me')
        .executor('a', 'tools://echo', { parameters: { value: 1 } })
        .executor('b', 'tools://echo', {
          needs: ['a'],
          retry_limit: 0,
          parameters: { fail_until: 1 },
        })
        .executor('c', 'tools://echo', { needs: ['b'] })
        .executor('side', 'tools://echo', { needs: ['a'] })
        .build(),
    );
    const { dag_id } = await dags.submit({ plan: 'retry-me' });
    const d = await ended(dag_id);
    expect(d.state).toBe('failed');
    expect(d.error).toEqual({ node_id: 'b', message: 'Error: echo failed (run 1)' });
    expect(node(d, 'b').state).toBe('failed');
    // The record follows the run's end (written after its commit, never inside it).
    await until(
      "b's record FAILED",
      async () => (await records.get(node(d, 'b').job_id))?.status === 'FAILED',
    );
    expect(node(d, 'c').state).toBe('cancelled');
    // `side` either finished before b failed or was cancelled with the rest: never left blocked.
    expect(['completed', 'cancelled']).toContain(node(d, 'side').state);
    const r = await dags.retry(dag_id);
    expect(r?.state).toBe('running');
    const again = await ended(dag_id);
    expect(again.state).toBe('completed');
    expect(ran.get(`${dag_id}/a`)).toBe(1);
    expect(ran.get(`${dag_id}/b`)).toBe(2);
    expect(ran.get(`${dag_id}/c`)).toBe(1);
    expect(node(again, 'a').runs).toBe(1);
    expect(node(again, 'b').runs).toBe(2);
    await expect(dags.retry(dag_id)).rejects.toThrow('nothing failed or was cancelled');
  });

  it('skip_dependents skips what depends on the failure; continue hands the failure on', async () => {
    const p = parsePlan({
      name: 'policies',
      nodes: {
        bad: {
          endpoint: 'tools://echo',
          retry_limit: 0,
          parameters: { fail: true },
          on_failure: 'skip_dependents',
        },
        after_bad: { endpoint: 'tools://echo', needs: ['bad'] },
        soft: {
          endpoint: 'tools://echo',
          retry_limit: 0,
          parameters: { fail: true },
          on_failure: 'continue',
        },
        after_soft: {
          endpoint: 'tools://echo',
          needs: ['soft'],
          parameters: { value: '$.nodes.soft.error.message' },
        },
        ok: { endpoint: 'tools://echo', parameters: { value: 'ok' } },
        any: { kind: 'merge', needs: ['after_bad', 'ok'], wait: 'any' },
      },
    });
    const { dag_id } = await dags.submit({ plan: p.source });
    const d = await ended(dag_id);
    expect(d.state).toBe('completed');
    expect(node(d, 'bad').state).toBe('failed');
    expect(node(d, 'after_bad').state).toBe('skipped');
    expect(node(d, 'after_soft').state).toBe('completed');
    expect(node(d, 'after_soft').output).toMatchObject({
      results: { Tools: { value: 'Error: echo failed (run 1)' } },
    });
    expect(node(d, 'any').state).toBe('completed');
  });

  it('retries a node by its retry_limit before it counts as failed', async () => {
    const { dag_id } = await dags.submit({
      plan: {
        name: 'flaky',
        nodes: {
          f: {
            endpoint: 'tools://echo',
            retry_limit: 2,
            retry_delay: 0,
            parameters: { fail_until: 2 },
          },
        },
      },
    });
    const d = await ended(dag_id);
    expect(d.state).toBe('completed');
    expect(node(d, 'f')).toMatchObject({ attempts: 3, runs: 1 });
    const outs = await dags.pool.query(
      'SELECT attempt FROM pgboss.marie_dag_output WHERE dag_id = $1',
      [dag_id],
    );
    expect(outs.rows).toEqual([{ attempt: 3 }]);
  });

  it('cancels a running DAG: the running node sees its signal, the rest is cancelled', async () => {
    const { dag_id } = await dags.submit({
      plan: {
        name: 'slow',
        nodes: { s: { endpoint: 'tools://slow' }, t: { endpoint: 'tools://echo', needs: ['s'] } },
      },
    });
    // Its root's start marks the DAG running (since a time) while the root still runs. (A node
    // reads active from pg-boss's job as soon as it is fetched, a moment before the worker's
    // begin statement: wait for both, then check the root is still the one running.)
    await until('s to run and the DAG with it', async () => {
      const d = await dags.get(dag_id);
      return d?.state === 'running' && node(d, 's').state === 'active';
    });
    const running = (await dags.get(dag_id))!;
    expect(running.state).toBe('running');
    expect(node(running, 's').state).toBe('active');
    expect(running.started_on).toEqual(expect.any(String));
    expect(node(running, 's').attempts).toBe(1);
    const c = await dags.cancel(dag_id);
    expect(c?.state).toBe('cancelled');
    expect(node(c!, 's').state).toBe('cancelled');
    expect(node(c!, 't').state).toBe('cancelled');
    await until('the slow run to be aborted', async () => worker.active === 0);
    expect((await dags.get(dag_id))?.state).toBe('cancelled');
  });

  it('stores a large output in the object store under its hash, readable by the next node', async () => {
    const big = 'x'.repeat(5000);
    const { dag_id } = await dags.submit({
      plan: {
        name: 'large',
        nodes: {
          a: { endpoint: 'tools://echo', parameters: { value: big } },
          b: {
            endpoint: 'tools://echo',
            needs: ['a'],
            parameters: { value: '$.nodes.a.output.results.Tools.value' },
          },
        },
      },
    });
    const d = await ended(dag_id);
    expect(node(d, 'a').output_key).toMatch(/^file:\/\/.*\/outputs\/[0-9a-f]{64}\.json$/);
    expect(node(d, 'a').output).toBeUndefined();
    expect(node(d, 'b').output_key).toBeDefined();
  });

  it('refuses before queueing anything: a missing asset, a bad plan, a bad body (naming the field)', async () => {
    const before = (await dags.pool.query('SELECT count(*)::int AS n FROM pgboss.marie_dag'))
      .rows[0].n;
    await expect(
      dags.submit({ plan: 'pages-branch', asset_key: join(dir, 'nope.pdf') }),
    ).rejects.toMatchObject({
      field: 'asset_key',
      message: expect.stringContaining('nope.pdf'),
    });
    await expect(dags.submit({ plan: 'pages-branch' })).rejects.toMatchObject({
      field: 'asset_key',
      message: "asset_key: plan pages-branch maps over the asset's pages: give the asset",
    });
    await expect(dags.submit({ plan: 'unknown' })).rejects.toMatchObject({ field: 'plan' });
    await expect(
      dags.submit({ plan: { name: 'cyc', nodes: { a: { needs: ['b'] }, b: { needs: ['a'] } } } }),
    ).rejects.toMatchObject({
      field: 'plan',
      message: 'plan cyc: a cycle through nodes a -> b -> a (a plan is a DAG)',
    });
    await expect(dags.submit({ plan: 'x', priority: 5000 })).rejects.toMatchObject({
      field: 'priority',
    });
    await expect(dags.submit({ plan: 'x', extra: 1 })).rejects.toMatchObject({
      message: 'extra: unknown field',
    });
    expect(
      (await dags.pool.query('SELECT count(*)::int AS n FROM pgboss.marie_dag')).rows[0].n,
    ).toBe(before);
  });

  it('dispatch: no run goes to an executor before it is ready, one slot means one run at a time, and a late DAG overtakes', async () => {
    const order: string[] = [];
    let inside = 0;
    let most = 0;
    let ready = false;
    let asked = 0;
    const gate = new DagWorker(dags, {
      control: 0,
      pollMs: 200,
      executors: {
        gate: {
          slots: 1,
          target: {
            async ready() {
              asked++;
              return ready;
            },
            async post(_on, _docs, options) {
              inside++;
              most = Math.max(most, inside);
              order.push(String((options.parameters as Record<string, unknown>).tag));
              await new Promise((r) => setTimeout(r, 30));
              inside--;
              return [];
            },
          },
        },
      },
    });
    const one = (tag: string, extra: Record<string, unknown> = {}) =>
      dags.submit({
        plan: { name: 'gated', nodes: { g: { endpoint: 'gate://run', parameters: { tag } } } },
        ...extra,
      });
    try {
      await gate.start();
      const first = await one('early-1');
      await one('early-2');
      await one('early-3');
      // Past its hard SLA from the start: the top bucket at once.
      await one('late-hard', { hard_sla: new Date(Date.now() - 1000).toISOString() });
      // Its soft SLA passes while it waits: the sweep raises it.
      const soft = await one('late-soft', { soft_sla: 1 });
      await new Promise((r) => setTimeout(r, 1100));
      expect(await dags.sweep()).toMatchObject({ raised: 1 });
      const view = await dags.get(soft.dag_id);
      expect(view?.late).toBe('soft');
      // Not ready: asked, but nothing was fetched.
      await until('readiness to be asked', async () => asked >= 2);
      expect((await dags.get(first.dag_id))?.nodes?.[0]?.state).toBe('pending');
      expect(order).toEqual([]);
      ready = true;
      await until('all five to run', async () => order.length === 5);
      expect(order.slice(0, 2)).toEqual(['late-hard', 'late-soft']);
      expect(order.slice(2).sort()).toEqual(['early-1', 'early-2', 'early-3']);
      expect(most).toBe(1);
    } finally {
      await gate.stop({ timeoutMs: 1000 });
    }
  });
});
