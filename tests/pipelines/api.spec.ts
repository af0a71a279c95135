import { Client } from '@marie/client';
import { MarieError } from '@marie/core';
import { Jobs } from '@marie/jobs';
import { Dags, DagWorker, dagRoutes } from '@marie/pipelines';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';

// The DAG API (@marie/pipelines' dagRoutes) over real HTTP, through the Client a user would use.
let drop: () => Promise<void>;
let jobs: Jobs;
let dags: Dags;
let app: FastifyInstance;
let base: string;
let client: Client;
let worker: DagWorker;
let failing = true;

beforeAll(async () => {
  const t = await testDatabase('marie_dags_http');
  drop = t.drop;
  jobs = new Jobs({ connectionString: t.url });
  dags = new Dags({ jobs });
  await dags.start();
  worker = new DagWorker(dags, {
    pollMs: 200,
    executors: {
      x: {
        slots: 2,
        target: {
          async post(on, _docs, options) {
            await new Promise((r) => setTimeout(r, 150));
            if (on === '/fail' && failing) throw new Error('told to fail');
            options.onDone?.({
              requestId: 'r',
              parameters: { __results__: { x: { on } } },
              docs: [],
            });
            return [];
          },
        },
      },
    },
  });
  await worker.start();
  app = Fastify();
  await app.register(dagRoutes(dags, { pollMs: 50 }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  client = new Client({ host: base, jobs: base });
});

afterAll(async () => {
  client?.close();
  await app?.close();
  await worker?.stop({ timeoutMs: 1000 });
  await dags?.stop();
  await jobs?.stop({ timeoutMs: 2000 });
  await drop?.();
});

const PLAN = {
  name: 'two',
  nodes: { a: { endpoint: 'x://a' }, b: { endpoint: 'x://fail', needs: ['a'], retry_limit: 0 } },
};

describe('the DAG API over HTTP', () => {
  it('submits (202), follows the DAG to its end over SSE with nodes done, retries from the failure, and lists', async () => {
    failing = true;
    const made = await client.submitDag({
      plan: PLAN,
      ref_id: 'http-1',
      idempotency_key: 'dag-http-1',
    });
    expect(made.created).toBe(true);
    expect(await client.submitDag({ plan: PLAN, idempotency_key: 'dag-http-1' })).toEqual({
      dag_id: made.dag_id,
      created: false,
    });
    const seen: string[] = [];
    const failed = await client.waitForDag(made.dag_id, {
      onProgress: (d) => seen.push(`${d.state} ${d.nodes_done}/${d.nodes_total}`),
      timeoutMs: 20_000,
    });
    expect(failed.state).toBe('failed');
    expect(seen.at(-1)).toBe('failed 2/2');
    expect(seen.length).toBeGreaterThan(1);
    expect(failed.nodes!.map((n) => [n.node_id, n.state, n.endpoint])).toEqual([
      ['a', 'completed', 'x://a'],
      ['b', 'failed', 'x://fail'],
    ]);
    expect(failed.nodes![1]!.error?.message).toBe('told to fail');
    failing = false;
    const retried = await client.retryDag(made.dag_id);
    expect(retried.state).toBe('running');
    // A second retry while it runs: 409.
    await expect(client.retryDag(made.dag_id)).rejects.toMatchObject({ code: 'aborted' });
    const done = await client.waitForDag(made.dag_id, { timeoutMs: 20_000 });
    expect(done.state).toBe('completed');
    expect(done.nodes!.map((n) => n.runs)).toEqual([1, 2]);
    const page = await client.dags({ ref_id: 'http-1' });
    expect(page.dags.map((d) => d.dag_id)).toEqual([made.dag_id]);
    expect(page.dags[0]).toMatchObject({ nodes_done: 2, nodes_total: 2, state: 'completed' });
    expect(page.dags[0]!.nodes).toBeUndefined();
  });

  it('cancels over DELETE; unknown ids answer 404, bad bodies and queries 422 naming the field', async () => {
    const { dag_id } = await client.submitDag({
      plan: { name: 'later', nodes: { a: { endpoint: 'nobody://a' } } },
    });
    const cancelled = await client.cancelDag(dag_id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.nodes![0]!.state).toBe('cancelled');
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const call of [
      () => client.dag(missing),
      () => client.cancelDag(missing),
      () => client.retryDag(missing),
      () => client.dag('not-a-uuid'),
    ])
      await expect(call()).rejects.toMatchObject({ code: 'not_found' });
    const events = await fetch(`${base}/api/v1/dags/${missing}/events`);
    expect(events.status).toBe(404);
    const post = (body: string) =>
      fetch(`${base}/api/v1/dags`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    const cases: [string, string][] = [
      ['{', 'body'],
      ['[]', 'body'],
      ['{}', 'plan'],
      ['{"plan": 3}', 'plan'],
      ['{"plan": "two", "priority": -1}', 'priority'],
      ['{"plan": "two", "soft_sla": "soon"}', 'soft_sla'],
      ['{"plan": {"name": "p", "nodes": {"a": {"kind": "llm"}}}}', 'plan'],
      [
        '{"plan": {"name": "p", "nodes": {"a": {"endpoint": "/x"}}}, "parameters": {"k": "\\u0000"}}',
        'parameters.k',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await post(body);
      const json = (await res.json()) as { field?: string; detail: string };
      expect([res.status, json.field ?? (res.status === 400 ? 'body' : undefined)], body).toEqual([
        res.status === 400 ? 400 : 422,
        field,
      ]);
    }
    const q = await fetch(`${base}/api/v1/dags?state=lost`);
    expect(q.status).toBe(422);
    expect(await q.json()).toMatchObject({ field: 'state' });
  });

  it('answers 2,000 fuzzed plan documents with 202 or a clear 4xx, never a 500', async () => {
    const base0 = {
      name: 'fuzz',
      nodes: {
        a: { endpoint: 'fz://a', parameters: { v: '$.input.v' } },
        b: {
          kind: 'branch',
          needs: ['a'],
          paths: [{ when: { '$.nodes.a.output.x': 1 }, to: ['c'] }],
          otherwise: ['d'],
        },
        c: { endpoint: '/c', needs: ['b'] },
        d: { kind: 'noop', needs: ['b'] },
        m: { kind: 'merge', needs: ['c', 'd'], wait: 'any' },
        g: {
          kind: 'guardrail',
          needs: ['m'],
          input: '$.nodes.a.output',
          schema: { type: 'object' },
          pass: [],
        },
      },
    };
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const junk = [
      null,
      0,
      -1,
      2 ** 40,
      '',
      'x',
      '$.',
      '$.nodes.zz',
      '\u0000',
      [],
      {},
      [1],
      true,
      '/x',
      'fz://b',
    ];
    const mutate = (v: unknown, depth: number): unknown => {
      if (depth > 4 || rnd() < 0.12) return junk[Math.floor(rnd() * junk.length)];
      if (Array.isArray(v)) return v.map((x) => (rnd() < 0.25 ? mutate(x, depth + 1) : x));
      if (v && typeof v === 'object') {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          const r = rnd();
          if (r < 0.05) continue;
          o[r < 0.08 ? `${k}\u00e9` : k] = r < 0.35 ? mutate(x, depth + 1) : x;
        }
        return o;
      }
      return v;
    };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const plan = mutate(base0, 0);
      const res = await fetch(`${base}/api/v1/dags`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ plan, parameters: { v: i } }),
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const json = (await res.json()) as { detail?: string };
      if (res.status >= 500)
        throw new Error(`case ${i}: ${res.status} ${json.detail}\n${JSON.stringify(plan)}`);
      if (res.status !== 202) expect(json.detail, JSON.stringify(plan)).toMatch(/\S/);
    }
    expect([...statuses.keys()].sort()).toEqual([202, 422]);
  }, 120_000);

  it('a MarieError from the DAG API names its code (the client maps statuses back)', async () => {
    const err = await client
      .retryDag('00000000-0000-4000-8000-000000000001')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MarieError);
  });
});
