import { ConfigError } from '@marie/core';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { plan } from './builder.js';
import { decide, expand, type RunRow } from './expand.js';
import { parsePlan, planFromMarie } from './plan.js';
import { planMermaid, planText } from './render.js';

const DOC = `
name: document
version: 2
defaults: { retry_limit: 1, on_failure: fail_dag }
nodes:
  orient:
    kind: map
    endpoint: orientation://document/orientation
    concurrency: 2
  ocr:
    kind: map
    needs: [orient]
    endpoint: extract_executor://document/extract
    parameters: { mode: $.input.mode, angle: $.nodes.orient.output.results }
  pages:
    kind: merge
    needs: [ocr]
  kind:
    kind: switch
    needs: [pages]
    field: $.input.kind
    cases: { invoice: [fields] }
    otherwise: [skip]
  fields:
    endpoint: /fields
    needs: [kind]
    parameters: { words: $.nodes.ocr.output }
  skip:
    kind: noop
    needs: [kind]
  check:
    kind: guardrail
    needs: [fields]
    input: $.nodes.fields.output.results
    schema: { type: object, required: [Fields] }
    pass: [store]
  store:
    endpoint: /store
    needs: [check]
`;

describe('plans', () => {
  it('parses YAML into a checked DAG with levels, and reads as text and as a Mermaid graph', () => {
    const p = parsePlan(parse(DOC), { where: 'document.yml' });
    expect(p.name).toBe('document');
    expect(p.version).toBe(2);
    expect(p.nodes.map((n) => `${n.id}:${n.level}`)).toEqual([
      'orient:0',
      'ocr:1',
      'pages:2',
      'kind:3',
      'fields:4',
      'skip:4',
      'check:5',
      'store:6',
    ]);
    const ocr = p.byId.get('ocr')!;
    expect(ocr.endpoint).toEqual({
      raw: 'extract_executor://document/extract',
      executor: 'extract_executor',
      path: '/document/extract',
    });
    expect(ocr.retry).toEqual({ limit: 1, delay: 2, backoff: true });
    const text = planText(p);
    expect(text).toContain('plan document v2: 8 nodes');
    expect(text).toContain('ocr [map] <- orient  extract_executor://document/extract over pages');
    const mermaid = planMermaid(p);
    expect(mermaid.split('\n')[0]).toBe('flowchart TD');
    expect(mermaid).toContain('kind -->|invoice| fields');
    expect(mermaid).toContain('kind -->|otherwise| skip');
    expect(mermaid).toContain('check -->|pass| store');
  });

  it('expands a map over pages into one run per page, page i of a map waiting for page i of the map before it', () => {
    const p = parsePlan(parse(DOC));
    const runs = expand(p, 3);
    const byId = new Map(runs.map((r) => [r.node_id, r]));
    // Pages of a map with a concurrency cap go to the executor's capped queue.
    expect(byId.get('orient[0]')).toMatchObject({ needs: [], queue: 'dag.orientation.capped' });
    expect(byId.get('ocr[2]')).toMatchObject({
      needs: ['orient[2]'],
      queue: 'dag.extract_executor.capped',
    });
    expect(byId.get('ocr')).toMatchObject({
      kind: 'fanin',
      needs: ['ocr[0]', 'ocr[1]', 'ocr[2]'],
      queue: 'dag.control',
    });
    expect(byId.get('pages')!.needs).toEqual(['ocr']);
    expect(byId.get('fields')!.queue).toBe('dag.flow');
    expect(runs).toHaveLength(3 + 1 + 3 + 1 + 6);
  });

  it('builds the same plan in TypeScript', () => {
    const p = plan('small')
      .map('ocr', '/document/extract', { concurrency: 4 })
      .branch('route', [{ when: { '$.nodes.ocr.output[0].results.x': 1 }, to: ['a'] }], {
        needs: ['ocr'],
        otherwise: ['b'],
      })
      .executor('a', '/a', { needs: ['route'] })
      .noop('b', { needs: ['route'] })
      .merge('end', { needs: ['a', 'b'], wait: 'any' })
      .build();
    expect(p.nodes.map((n) => n.id)).toEqual(['ocr', 'route', 'a', 'b', 'end']);
    expect(p.byId.get('end')!.merge).toEqual({ wait: 'any', n: 1, skipped: 'ignore' });
  });

  it('refuses what cannot run, naming the plan, the node and the key', () => {
    const bad = (nodes: unknown, known?: Parameters<typeof parsePlan>[1]) => () =>
      parsePlan({ name: 'p', nodes }, known);
    expect(bad({ a: { needs: ['c'] }, b: { needs: ['a'] }, c: { needs: ['b'] } })).toThrow(
      'plan p: a cycle through nodes a -> b -> c -> a (a plan is a DAG)',
    );
    expect(bad({ a: { kind: 'llm' } })).toThrow(
      'plan p: node a: kind: "llm" is not one of executor, map, branch, switch, merge, guardrail, noop',
    );
    expect(bad({ a: { endpoint: '/x', paramters: {} } })).toThrow(
      'plan p: node a: paramters: unknown key for a executor node',
    );
    expect(
      bad({ a: { endpoint: '/x' }, b: { endpoint: '/y', parameters: { v: '$.nodes.c.output' } } }),
    ).toThrow('plan p: node b: parameters.v: $.nodes.c.output: no upstream node "c" produces this');
    expect(
      bad({ a: { endpoint: '/x' }, b: { endpoint: '/y', parameters: { v: '$.nodes.a.output' } } }),
    ).toThrow('no upstream node "a" produces this (it must be among b\'s ancestors)');
    expect(bad({ a: { endpoint: '/x', parameters: { v: '$.page' } } })).toThrow(
      'plan p: node a: parameters.v: $.page: $.page exists only inside a map node',
    );
    expect(
      bad({
        a: { kind: 'branch', paths: [{ when: { '$.input.x': 1 }, to: ['c'] }] },
        b: { needs: ['a'] },
        c: {},
      }),
    ).toThrow('plan p: node a: paths[0].to: "c" is not a child of a');
    expect(bad({ a: { endpoint: 'x:/y' } })).toThrow(
      'plan p: node a: endpoint: "x:/y" is not an endpoint',
    );
    expect(
      bad(
        { a: { endpoint: 'ocr://document/extract' } },
        { known: { executors: new Map([['orient', new Set()]]) } },
      ),
    ).toThrow(
      'plan p: node a: endpoint: ocr://document/extract: no executor "ocr" in the Flow (it has orient)',
    );
    expect(
      bad(
        { a: { endpoint: 'ocr://document/x' } },
        { known: { executors: new Map([['ocr', new Set(['/document/extract'])]]) } },
      ),
    ).toThrow('executor ocr has no endpoint /document/x (it has /document/extract)');
    expect(() => parsePlan({ name: 'p', nodes: {}, extra: 1 })).toThrow(
      'plan p: extra: unknown key',
    );
    expect(() => parsePlan({ nodes: {} })).toThrow('plan.name: expected a plan name');
  });

  it("loads Marie's stored plan JSON, and refuses what has no counterpart by node and method", () => {
    // Written by hand from the shape Marie's registry stores.
    const marie = {
      nodes: [
        {
          task_id: 'root',
          query_str: 'START',
          dependencies: [],
          node_type: 'COMPUTE',
          definition: { method: 'NOOP', endpoint: 'noop', params: { layout: null } },
        },
        {
          task_id: 'extract',
          query_str: 'extract the text',
          dependencies: ['root'],
          node_type: 'EXTRACTOR',
          definition: {
            method: 'EXECUTOR_ENDPOINT',
            endpoint: 'extract_executor://document/extract',
            params: { mode: 'line' },
          },
        },
        {
          task_id: 'classify',
          dependencies: ['extract'],
          node_type: 'BRANCH',
          definition: {
            method: 'NOOP',
            evaluation_mode: 'first_match',
            paths: [
              {
                path_id: 'inv',
                target_node_ids: ['invoice'],
                condition: { jsonpath: '$.results.kind', operator: '==', value: 'invoice' },
              },
              { path_id: 'other', target_node_ids: ['other'] },
            ],
          },
        },
        {
          task_id: 'invoice',
          dependencies: ['classify'],
          node_type: 'COMPUTE',
          definition: { method: 'EXECUTOR_ENDPOINT', endpoint: 'fields://invoice/fields' },
        },
        {
          task_id: 'other',
          dependencies: ['classify'],
          definition: { method: 'NOOP', endpoint: 'noop' },
        },
        {
          task_id: 'end',
          dependencies: ['invoice', 'other'],
          node_type: 'MERGER',
          definition: { method: 'NOOP', merge_strategy: 'WAIT_ANY' },
        },
      ],
    };
    const p = parsePlan(marie);
    expect(p.name).toBe('marie-plan');
    expect(p.byId.get('extract')).toMatchObject({
      kind: 'executor',
      parameters: { mode: 'line' },
      description: 'extract the text',
    });
    expect(p.byId.get('classify')!.branch!.paths[0]).toEqual({
      when: { '$.nodes.extract.output.results.kind': { $eq: 'invoice' } },
      to: ['invoice'],
    });
    expect(p.byId.get('classify')!.otherwise).toEqual(['other']);
    expect(p.byId.get('end')!.merge!.wait).toBe('any');
    const llm = structuredClone(marie);
    llm.nodes[1]!.definition = { method: 'LLM', model_name: 'qwen' } as never;
    expect(() => planFromMarie(llm)).toThrow(
      'plan (Marie plan marie-plan): task extract: definition.method LLM has no counterpart here',
    );
    const guard = structuredClone(marie);
    guard.nodes[4]!.node_type = 'GUARDRAIL';
    expect(() => planFromMarie(guard)).toThrow(
      'task other: node_type GUARDRAIL has no counterpart here',
    );
  });

  it('decides a merge by its rule and a plain node by its parents', () => {
    const p = parsePlan({
      name: 'm',
      nodes: {
        a: { endpoint: '/a', on_failure: 'continue' },
        b: { endpoint: '/b', on_failure: 'skip_dependents' },
        any: { kind: 'merge', needs: ['a', 'b'], wait: 'any' },
        all: { kind: 'merge', needs: ['a', 'b'] },
        two: { kind: 'merge', needs: ['a', 'b'], wait: 'n', n: 2, skipped: 'count' },
        plain: { endpoint: '/c', needs: ['a', 'b'] },
      },
    });
    const rows = (a: RunRow['state'], b: RunRow['state']) =>
      new Map<string, RunRow>([
        ['a', { node_id: 'a', plan_node: 'a', state: a, needs: [], chosen: null }],
        ['b', { node_id: 'b', plan_node: 'b', state: b, needs: [], chosen: null }],
      ]);
    const d = (id: string, a: RunRow['state'], b: RunRow['state']) =>
      decide(
        p,
        { node_id: id, plan_node: id, state: 'blocked', needs: ['a', 'b'], chosen: null },
        rows(a, b),
      );
    expect(d('any', 'completed', 'active')).toBe('ready');
    expect(d('any', 'skipped', 'active')).toBe('wait');
    expect(d('all', 'completed', 'active')).toBe('wait');
    expect(d('all', 'completed', 'skipped')).toBe('ready');
    // a failed under `continue` counts as done; b failed under `skip_dependents` as skipped.
    expect(d('two', 'failed', 'failed')).toBe('ready');
    expect(d('plain', 'failed', 'completed')).toBe('ready');
    expect(d('plain', 'completed', 'failed')).toBe('skip');
    expect(d('all', 'skipped', 'skipped')).toBe('skip');
  });

  it('answers 2,000 mangled plan documents with a ConfigError or a plan, never anything else', () => {
    const base = parse(DOC) as Record<string, unknown>;
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const junk = [
      null,
      0,
      -1,
      1.5,
      '',
      'x',
      '$.',
      '$.nodes',
      '$.nodes.ocr.output[*]',
      [],
      {},
      [1],
      { a: 1 },
      true,
      '/x',
      'a://b',
    ];
    const mutate = (v: unknown, depth: number): unknown => {
      if (depth > 4 || rnd() < 0.15) return junk[Math.floor(rnd() * junk.length)];
      if (Array.isArray(v)) return v.map((x) => (rnd() < 0.2 ? mutate(x, depth + 1) : x));
      if (v && typeof v === 'object') {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          const r = rnd();
          if (r < 0.05) continue;
          o[r < 0.08 ? `${k}_` : k] = r < 0.3 ? mutate(x, depth + 1) : x;
        }
        return o;
      }
      return v;
    };
    let ok = 0;
    for (let i = 0; i < 2000; i++) {
      const doc = mutate(base, 0);
      try {
        parsePlan(doc);
        ok++;
      } catch (err) {
        if (!(err instanceof ConfigError))
          throw new Error(`case ${i}: ${(err as Error).stack}\n${JSON.stringify(doc)}`);
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});
