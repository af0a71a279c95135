import { createDataRequest, type DataRequest, DRY_RUN_ENDPOINT, StatusCode } from '@marie/core';
import { DocList, LegacyDocument, NdArray } from '@marie/docs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoDefaultExecutor, ReferenceExecutor, TensorDoc, TextIn } from './reference-executor.js';
import {
  inProcess,
  overGrpc,
  overHttp,
  overWsBytes,
  overWsJson,
  type Target,
  type TargetFactory,
  texts,
} from './targets.js';

// One set of expectations, every transport. HTTP and WebSocket plug in as more factories.
const TARGETS: [string, TargetFactory][] = [
  ['in process', inProcess],
  ['gRPC', overGrpc],
  ['HTTP', overHttp],
  ['WebSocket json', overWsJson],
  ['WebSocket bytes', overWsBytes],
];

const NAME = 'ref';
const request = (
  endpoint: string,
  docs: unknown[] = [],
  parameters: Record<string, unknown> = {},
) => createDataRequest({ endpoint, docs, parameters });
const results = (res: DataRequest) =>
  (res.parameters.__results__ as Record<string, any> | undefined)?.[NAME];

describe.each(TARGETS)('conformance: %s', (_label, factory) => {
  let target: Target;
  let executor: ReferenceExecutor;
  beforeAll(async () => {
    executor = new ReferenceExecutor({ metas: { name: NAME } });
    target = await factory(executor);
  });
  afterAll(() => target.close());

  it('calls a bound endpoint, keeps ids, appends the route', async () => {
    const req = request('/upper', [{ id: 'd1', text: 'ab' }, { text: 'cd' }]);
    const res = await target.call(req);
    expect(res.header.requestId).toBe(req.header.requestId);
    expect(res.header.status?.code ?? StatusCode.SUCCESS).toBe(StatusCode.SUCCESS);
    expect(texts(res.docs)).toEqual(['AB', 'CD']);
    expect((res.docs as { id: string }[])[0]!.id).toBe('d1');
    expect(res.routes.map((r) => r.executor)).toEqual([NAME]);
  });

  it('answers with the response schema', async () => {
    const res = await target.call(request('/length', [{ text: 'abc' }]));
    expect(res.docs).toMatchObject([{ text: 'abc', length: 3 }]);
  });

  it('falls back to /default for unknown endpoints', async () => {
    const res = await target.call(request('/nowhere', [{ text: 'x', tags: { keep: 1 } }]));
    expect(res.docs).toMatchObject([{ text: 'x', tags: { keep: 1, endpoint: '/default' } }]);
  });

  it('returns an unknown endpoint unchanged when no /default exists', async () => {
    const other = await factory(new NoDefaultExecutor());
    try {
      const res = await other.call(request('/missing', [{ text: 'x' }], { a: 1 }));
      expect(res.header.status?.code ?? 0).toBe(StatusCode.SUCCESS);
      expect(texts(res.docs)).toEqual(['x']);
      expect(res.parameters).toEqual({ a: 1 });
      expect(res.routes).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('lists nothing for a dry run but answers it', async () => {
    const res = await target.call(request(DRY_RUN_ENDPOINT, [{ text: 'x' }]));
    expect(res.header.status?.code ?? 0).toBe(StatusCode.SUCCESS);
    expect(res.routes.map((r) => r.executor)).toEqual([NAME]);
  });

  it('scopes parameters[<executor name>] to this executor, results under __results__', async () => {
    const res = await target.call(
      request('/params', [], {
        mode: 'all',
        n: 1.5,
        [NAME]: { mode: 'mine' },
        other: { mode: 'theirs' },
      }),
    );
    expect(results(res).seen).toMatchObject({ mode: 'mine', n: 1.5, other: { mode: 'theirs' } });
    expect(res.parameters.mode).toBe('all');
  });

  it('validates typed parameters and names the missing field', async () => {
    const ok = await target.call(request('/typed', [], { job_id: 'j1' }));
    expect(results(ok)).toEqual({ job_id: 'j1', threshold: 0.5 });
    const bad = await target.call(request('/typed', [], {}));
    expect(bad.header.status).toMatchObject({
      code: StatusCode.ERROR,
      description: 'ValidationError: parameters.job_id: required field is missing',
      exception: { name: 'ValidationError', executor: 'ReferenceExecutor' },
    });
  });

  it('rejects documents of the wrong shape, naming the field', async () => {
    const res = await target.call(request('/upper', [{ text: 'a' }, { text: 5 }]));
    expect(res.header.status?.description).toBe(
      'ValidationError: docs[1].text: expected string, got number',
    );
  });

  it('carries an executor error back with its name, args, stack and executor', async () => {
    const res = await target.call(request('/fail', [{ text: 'a' }, { text: 'b' }]));
    expect(res.header.status).toMatchObject({
      code: StatusCode.ERROR,
      description: 'ValueError: cannot process 2 documents',
      exception: {
        name: 'ValueError',
        args: ['cannot process 2 documents'],
        executor: 'ReferenceExecutor',
      },
    });
    expect(res.header.status!.exception!.stacks[0]).toBe('ValueError: cannot process 2 documents');
    expect(res.header.status!.exception!.stacks.length).toBeGreaterThan(1);
    expect(res.routes.map((r) => r.executor)).toEqual([NAME]);
  });

  it('serves 10 concurrent requests, each answered with its own documents', async () => {
    const delays = [90, 80, 70, 60, 50, 40, 30, 20, 10, 0];
    const started = Date.now();
    const answers = await Promise.all(
      delays.map((delay, i) =>
        target.call(request('/slow', [{ id: `doc-${i}`, text: `t${i}` }], { delay })),
      ),
    );
    // Async endpoints overlap: 10 calls take about as long as the slowest, not the sum (450 ms).
    expect(Date.now() - started).toBeLessThan(400);
    answers.forEach((res, i) => {
      expect(res.docs).toMatchObject([
        { id: `doc-${i}`, text: `t${i}`, tags: { delay: delays[i] } },
      ]);
    });
  });

  it('batches concurrent requests dynamically and splits the answers back', async () => {
    executor.batches.length = 0;
    const answers = await Promise.all([
      target.call(request('/batch', [{ text: 'a' }, { text: 'b' }])),
      target.call(request('/batch', [{ text: 'c' }])),
      target.call(request('/batch', [{ text: 'd' }])),
    ]);
    expect(answers.map((a) => texts(a.docs))).toEqual([['a', 'b'], ['c'], ['d']]);
    expect(executor.batches).toEqual([4]);
    expect(
      answers.flatMap((a) => (a.docs as { tags: { batch: number } }[]).map((d) => d.tags.batch)),
    ).toEqual([4, 4, 4, 4]);
  });

  it('streams what a generator endpoint yields, document by document', async () => {
    const out: unknown[] = [];
    for await (const doc of target.stream('/words', { text: 'one two  three' }))
      out.push((doc as { text: string }).text);
    expect(out).toEqual(['one', 'two', 'three']);
  });

  it('carries large tensors exactly (16 MB float32, past gRPC default limits)', async () => {
    const data = new Float32Array(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 1e3;
    const docs = new DocList(TensorDoc, [
      { tensor: new NdArray(data, [2048, 2048]) },
      { tensor: new NdArray(new Int32Array([1, -2, 3])) },
    ]);
    const res = await target.call(createDataRequest({ endpoint: '/tensor', docs }));
    const back = new DocList(TensorDoc, res.docs as object[]);
    expect(back.get('note')).toEqual(['float32[2048x2048]', 'int32[3]']);
    expect(back[0]!.tensor.equals(docs[0]!.tensor)).toBe(true);
    expect(back[1]!.tensor.equals(docs[1]!.tensor)).toBe(true);
  }, 90_000); // 4M floats as JSON on the HTTP and WebSocket json transports take seconds

  it('round-trips untyped LegacyDocument fields', async () => {
    const docs = new DocList(LegacyDocument, [
      {
        text: 't',
        url: 'http://x/y.png',
        blob: new Uint8Array([1, 2]),
        embedding: [0.25, 0.5],
        tags: { a: [1, 'b', { c: null }] },
        chunks: [{ text: 'c1' }],
      },
    ]);
    const res = await target.call(createDataRequest({ endpoint: '/nowhere', docs }));
    const back = new DocList(LegacyDocument, res.docs as object[]);
    expect(back[0]!.blob).toEqual(new Uint8Array([1, 2]));
    expect(back[0]!.embedding!.equals(docs[0]!.embedding!)).toBe(true);
    expect(back[0]!.tags).toEqual({ a: [1, 'b', { c: null }], endpoint: '/default' });
    expect(back[0]!.chunks![0]!.text).toBe('c1');
    expect(back[0]!.url).toBe('http://x/y.png');
  });

  it('types answers as TextIn when asked', async () => {
    const res = await target.call(request('/upper', [{ text: 'q' }]));
    expect(new DocList(TextIn, res.docs as object[]).get('text')).toEqual(['Q']);
  });
});
