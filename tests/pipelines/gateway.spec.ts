// Pipelines on a real gateway: `marie flow` with `jobs.plans` serves /api/v1/dags (in its OpenAPI
// document) and runs the plan's nodes on its deployment (2 replicas); `marie plan` checks and
// shows plans; `marie dag` submits, waits (exit 0 only when completed), lists, retries from the
// failure. Real processes, real sockets, a real Postgres.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DagView } from '@marie/jobs-contract';
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

const FIXTURES = join(ROOT, 'tests/pipelines/fixtures');
let drop: () => Promise<void>;
let url: string;
let flow: MarieProcess;
let http: string;
let grpc: string;
let flag: string;

/** `marie ...` as a user runs it, against this gateway: its exit code, stdout and stderr. */
const marie = (...args: string[]) => marieCommand([...args], { MARIE_GATEWAY: http });

beforeAll(async () => {
  const t = await testDatabase('marie_dag_gateway');
  drop = t.drop;
  url = t.url;
  flag = join(mkdtempSync(join(tmpdir(), 'marie-dag-flag-')), 'fail');
  flow = runMarie(['flow', '--uses', join(FIXTURES, 'dag-flow.yml')], {
    env: { JOBS_DATABASE_URL: t.url, DAG_FAIL_FLAG: flag },
  });
  const ready = await waitReady(flow, 2, 60_000);
  http = ready.find((l) => l.includes('http://'))!.slice('ready '.length);
  grpc = ready.find((l) => l.includes('grpc://'))!.slice('ready '.length);
}, 120_000);

afterAll(async () => {
  if (flow && flow.child.exitCode === null) {
    flow.child.kill('SIGTERM');
    await flow.exited;
  }
  rmSync(join(flag, '..'), { recursive: true, force: true });
  await drop?.();
});

describe('pipelines on the gateway (marie flow with jobs.plans, marie plan, marie dag)', () => {
  it('marie plan validate and show: a summary, the plan as text and Mermaid; a cycle refused (exit 2) naming its nodes', async () => {
    const ok = await marie('plan', 'validate', join(FIXTURES, 'plan.yml'));
    expect(ok).toMatchObject({ code: 0, out: 'ok: plan steps v3, 5 nodes, 4 levels\n' });
    const shown = await marie('plan', 'show', join(FIXTURES, 'plan.yml'));
    expect(shown.code).toBe(0);
    expect(shown.out).toContain('plan steps v3: 5 nodes');
    expect(shown.out).toContain('route -->|invoice| invoice');
    // A plan at fault is a usage error: exit 2, as for a bad Flow YAML.
    const bad = await marie('plan', 'validate', join(FIXTURES, 'bad-plan.yml'));
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('plan bad: a cycle through nodes a -> b -> c -> a');
  });

  it('serves the DAG API in its OpenAPI document', async () => {
    const doc = (await (await fetch(`${http}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths['/api/v1/dags']!)).toEqual(
      expect.arrayContaining(['get', 'post']),
    );
    expect(Object.keys(doc.paths['/api/v1/dags/{id}']!)).toEqual(
      expect.arrayContaining(['get', 'delete']),
    );
    expect(doc.paths['/api/v1/dags/{id}/retry']).toBeDefined();
    expect(doc.paths['/api/v1/dags/{id}/events']).toBeDefined();
    expect(doc.paths['/api/v1/jobs']).toBeDefined();
  });

  it('marie dag submit --wait runs the plan on the deployment: the switch on an upstream output, the merge', async () => {
    const r = await marie(
      'dag',
      'submit',
      'steps',
      '--parameters',
      '{"kind":"memo"}',
      '--ref-id',
      'cli-1',
      '--wait',
    );
    expect(r.code, r.err).toBe(0);
    const dag = JSON.parse(r.out) as DagView;
    expect(dag.state).toBe('completed');
    const state = Object.fromEntries(dag.nodes!.map((n) => [n.node_id, n.state]));
    expect(state).toEqual({
      classify: 'completed',
      route: 'completed',
      invoice: 'skipped',
      other: 'completed',
      end: 'completed',
    });
    // Without a terminal, progress goes to stderr as lines.
    expect(r.err).toMatch(/dag .*: completed \(5\/5 nodes\)/);
    const list = await marie('dag', 'list', '--ref-id', 'cli-1');
    expect(JSON.parse(list.out).dags.map((d: DagView) => d.dag_id)).toEqual([dag.dag_id]);
  });

  it('a failed node fails the DAG (exit 1); marie dag retry runs only it and what follows', async () => {
    writeFileSync(flag, 'x');
    const r = await marie('dag', 'submit', 'steps', '--parameters', '{"kind":"invoice"}', '--wait');
    expect(r.code).toBe(1);
    const failed = JSON.parse(r.out) as DagView;
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatchObject({ node_id: 'invoice' });
    expect(failed.error!.message).toContain('told to fail');
    rmSync(flag);
    const retried = await marie('dag', 'retry', failed.dag_id);
    expect(retried.code, retried.err).toBe(0);
    const waited = await marie('dag', 'wait', failed.dag_id);
    expect(waited.code, waited.err).toBe(0);
    const done = JSON.parse(waited.out) as DagView;
    const runs = Object.fromEntries(done.nodes!.map((n) => [n.node_id, n.runs]));
    expect(runs).toEqual({ classify: 1, route: 1, invoice: 2, other: 0, end: 1 });
    // Bad input from the command line: the gateway's 422 names the field.
    const bad = await marie('dag', 'submit', 'steps', '--priority', '5000');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('priority');
    const unknown = await marie('dag', 'status', '00000000-0000-4000-8000-000000000000');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no DAG 00000000-0000-4000-8000-000000000000');
  });

  it('marie worker --dag adds slots: DAG nodes of the executor run in the worker process too', async () => {
    const worker = runMarie(['worker', '--target', grpc, '--database', url, '--dag', 'steps=2']);
    try {
      const started = Date.now();
      while (!worker.stdout().includes('ready worker')) {
        if (worker.child.exitCode !== null) throw new Error(`worker exited: ${worker.stderr()}`);
        if (Date.now() - started > 30_000) throw new Error(`worker not ready: ${worker.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(worker.stdout()).toContain('ready worker dag.steps=2');
      // More runs at once than the gateway's slots (2 replicas x 2): some go to the worker.
      const made = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          fetch(`${http}/api/v1/dags`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              plan: 'steps',
              ref_id: `w${i}`,
              parameters: { kind: 'memo', ms: 400 },
            }),
          }).then((r) => r.json() as Promise<{ dag_id: string }>),
        ),
      );
      for (const { dag_id } of made) {
        const w = await marie('dag', 'wait', dag_id);
        expect(w.code, w.err).toBe(0);
      }
      // Marie's job record of each node run names the process that ran it.
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        const rows = await db.query(
          `SELECT count(*)::int AS n FROM public.marie_job WHERE executor LIKE $1 AND status = 'SUCCEEDED'`,
          [`%-${worker.child.pid}-%`],
        );
        expect(rows.rows[0].n).toBeGreaterThan(0);
      } finally {
        await db.end();
      }
    } finally {
      worker.child.kill('SIGTERM');
      const { code } = await worker.exited;
      expect(code, worker.stderr()).toBe(0);
    }
  }, 120_000);

  it('a Flow whose plan names an executor it lacks is refused at start (exit 2), naming plan, node and endpoint', async () => {
    const bad = runMarie(['flow', '--uses', join(FIXTURES, 'unknown-executor-flow.yml')], {
      env: { JOBS_DATABASE_URL: url },
    });
    const { code } = await bad.exited;
    expect(code).toBe(2);
    expect(bad.stderr()).toContain(
      'marie flow: plan typo: node a: endpoint: stpes://step: no executor "stpes" in the Flow (it has steps)',
    );
  }, 60_000);
});
