import { setTimeout as sleep } from 'node:timers/promises';
import { DocList, type DocOf, defineDoc, type LegacyDocument, Type } from '@marie/docs';
import { describe, expect, it } from 'vitest';
import {
  createDataRequest,
  type DataRequest,
  DRY_RUN_ENDPOINT,
  dynamicBatching,
  Executor,
  type RequestContext,
  RequestHandler,
  requests,
  StatusCode,
} from './index.js';

const TextIn = defineDoc('TextIn', { text: Type.String({ default: '' }) });
type TextIn = DocOf<typeof TextIn>;
const Lengths = defineDoc('Lengths', { length: Type.Integer() });

class Reference extends Executor {
  @requests({ on: '/upper', requestSchema: TextIn })
  upper(docs: DocList<TextIn>) {
    for (const d of docs) d.text = d.text.toUpperCase();
  }

  @requests({ on: ['/length', '/len'], requestSchema: TextIn, responseSchema: Lengths })
  length(docs: DocList<TextIn>) {
    return new DocList(
      Lengths,
      docs.map((d) => ({ id: d.id, length: d.text.length })),
    );
  }

  @requests({ on: '/stats' })
  stats(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    return { count: docs.length, parameters: ctx.parameters };
  }

  @requests
  fallback(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    for (const d of docs) d.tags = { ...d.tags, servedBy: ctx.endpoint };
  }

  @requests({ on: '/fail' })
  fail(): never {
    throw new RangeError('bad thing');
  }

  @requests({ on: '/number' })
  number() {
    return 42;
  }

  @requests({
    on: '/typed',
    parametersSchema: Type.Object({
      job_id: Type.String(),
      layout: Type.String({ default: 'default' }),
    }),
  })
  typed(_docs: DocList<LegacyDocument>, ctx: RequestContext<{ job_id: string; layout: string }>) {
    return { job: ctx.parameters.job_id, layout: ctx.parameters.layout };
  }

  @requests({ on: '/each', requestSchema: TextIn, single: true })
  each(doc: TextIn) {
    return doc.text === 'skip' ? undefined : { ...doc, text: `<${doc.text}>` };
  }

  @requests({ on: '/gen', requestSchema: TextIn })
  async *gen(doc: TextIn) {
    for (const word of doc.text.split(' ')) yield { text: word };
  }
}

const post = (handler: RequestHandler, endpoint: string, docs: unknown[] = [], parameters = {}) =>
  handler.handle(createDataRequest({ endpoint, docs, parameters }));

const handler = new RequestHandler(new Reference({ metas: { name: 'ref' } }));

describe('RequestHandler dispatch', () => {
  it('calls the bound method and appends the route', async () => {
    const res = await post(handler, '/upper', [{ text: 'ab' }]);
    expect(res.header.status).toBeUndefined();
    expect((res.docs as DocList<TextIn>).get('text')).toEqual(['AB']);
    expect(res.routes).toEqual([{ executor: 'ref' }]);
  });

  it('binds one method to several endpoints and converts to the response schema', async () => {
    for (const e of ['/length', '/len']) {
      const res = await post(handler, e, [{ text: 'abc' }]);
      expect((res.docs as DocList<object>).docType).toBe(Lengths);
      expect((res.docs as DocList<{ length: number }>)[0]!.length).toBe(3);
    }
  });

  it('falls back to /default for unknown endpoints, with LegacyDocument fields', async () => {
    const res = await post(handler, '/nowhere', [{ text: 'x', tags: { a: 1 }, embedding: [1, 2] }]);
    const doc = (res.docs as DocList<LegacyDocument>)[0]!;
    expect(doc.tags).toEqual({ a: 1, servedBy: '/default' });
    expect(doc.embedding!.shape).toEqual([2]);
  });

  it('returns an unknown endpoint unchanged when there is no /default', async () => {
    class NoDefault extends Executor {
      @requests({ on: '/a' })
      a() {}
    }
    const h = new RequestHandler(new NoDefault());
    const req = createDataRequest({ endpoint: '/b', docs: [{ text: 'x' }] });
    expect(await h.handle(req)).toBe(req);
  });

  it('answers the dry-run endpoint without calling anything, and lists it', async () => {
    const res = await post(handler, DRY_RUN_ENDPOINT, [{ text: 'x' }]);
    expect(res.header.status).toBeUndefined();
    expect(res.routes).toHaveLength(1);
    const listing = handler.endpoints();
    expect(listing.endpoints).toEqual([
      '/upper',
      '/length',
      '/len',
      '/stats',
      '/default',
      '/fail',
      '/number',
      '/typed',
      '/each',
      '/gen',
      DRY_RUN_ENDPOINT,
    ]);
    expect(listing.schemas['/length']).toMatchObject({
      input: { name: 'TextIn', model: { title: 'TextIn' } },
      output: { name: 'Lengths', model: { title: 'Lengths', required: ['length'] } },
      is_generator: false,
      is_singleton_doc: false,
      parameters: { name: null, model: null },
    });
    expect(listing.schemas['/typed']!.parameters.model).toMatchObject({
      required: ['job_id'],
      properties: { layout: { default: 'default' } },
    });
    expect(listing.schemas['/gen']).toMatchObject({ is_generator: true, is_singleton_doc: true });
    expect(listing.schemas[DRY_RUN_ENDPOINT]!.input.name).toBe('LegacyDocument');
  });
});

describe('return rules and parameters', () => {
  it('puts a returned object at parameters.__results__[name], keeping docs and earlier results', async () => {
    const res = await post(handler, '/stats', [{ text: 'a' }, { text: 'b' }], {
      top: 1,
      __results__: { other: { x: 1 } },
    });
    expect(res.parameters.__results__).toEqual({
      other: { x: 1 },
      ref: { count: 2, parameters: { top: 1, __results__: { other: { x: 1 } } } },
    });
    expect(res.docs).toHaveLength(2);
  });

  it('merges parameters[<executor name>] over the top level for this executor only', async () => {
    const res = await post(handler, '/stats', [], {
      mode: 'all',
      ref: { mode: 'mine' },
      other: { mode: 'theirs' },
    });
    const seen = (res.parameters.__results__ as any).ref.parameters;
    expect(seen.mode).toBe('mine');
    expect(seen.other).toEqual({ mode: 'theirs' });
    expect(res.parameters.mode).toBe('all');
  });

  it('turns any other return value into a clear error', async () => {
    const res = await post(handler, '/number');
    expect(res.header.status?.code).toBe(StatusCode.ERROR);
    expect(res.header.status?.description).toContain(
      'Reference.number returned number; it must return a DocList, a plain object (results) or nothing',
    );
  });

  it('validates typed parameters, applying defaults and naming missing fields', async () => {
    const ok = await post(handler, '/typed', [], { job_id: 'j1' });
    expect(ok.header.status).toBeUndefined();
    expect((ok.parameters.__results__ as any).ref).toEqual({ job: 'j1', layout: 'default' });
    const missing = await post(handler, '/typed', [], {});
    expect(missing.header.status).toMatchObject({
      code: StatusCode.ERROR,
      description: 'ValidationError: parameters.job_id: required field is missing',
      exception: { name: 'ValidationError', executor: 'Reference' },
    });
    const wrong = await post(handler, '/typed', [], { job_id: 7 });
    expect(wrong.header.status?.description).toBe(
      'ValidationError: parameters.job_id: expected string, got number',
    );
  });

  it('rejects documents of the wrong shape naming index and field', async () => {
    const res = await post(handler, '/upper', [{ text: 'a' }, { text: 3 }]);
    expect(res.header.status?.description).toBe(
      'ValidationError: docs[1].text: expected string, got number',
    );
    expect(res.docs).toEqual([{ text: 'a' }, { text: 3 }]);
  });

  it('calls single-document methods once per document', async () => {
    const res = await post(handler, '/each', [{ text: 'a' }, { text: 'skip' }]);
    expect((res.docs as DocList<TextIn>).get('text')).toEqual(['<a>', 'skip']);
  });

  it('collects a generator endpoint, and streams it document by document', async () => {
    const res = await post(handler, '/gen', [{ text: 'a b' }, { text: 'c' }]);
    expect((res.docs as DocList<TextIn>).get('text')).toEqual(['a', 'b', 'c']);
    const out: string[] = [];
    for await (const part of handler.streamDoc({
      header: { requestId: 'r', execEndpoint: '/gen' },
      parameters: {},
      routes: [],
      document: { text: 'x y z' },
    })) {
      out.push((part.document as TextIn).text);
    }
    expect(out).toEqual(['x', 'y', 'z']);
  });
});

describe('errors', () => {
  it('turns a thrown error into status ERROR with name, args, stack and executor', async () => {
    const req = createDataRequest({ endpoint: '/fail', docs: [{ text: 'x' }] });
    const res = await handler.handle(req);
    expect(res.header.requestId).toBe(req.header.requestId);
    expect(res.header.status).toMatchObject({
      code: StatusCode.ERROR,
      description: 'RangeError: bad thing',
      exception: { name: 'RangeError', args: ['bad thing'], executor: 'Reference' },
    });
    expect(res.header.status!.exception!.stacks[0]).toBe('RangeError: bad thing');
    expect(
      res.header.status!.exception!.stacks.some((l) => l.includes('request-handler.spec.ts')),
    ).toBe(true);
    expect(res.routes).toEqual([{ executor: 'ref' }]);
  });

  it('ends a stream with an error answer when the generator throws', async () => {
    class Boom extends Executor {
      @requests({ on: '/gen' })
      async *gen() {
        yield { text: 'one' };
        throw new Error('stream broke');
      }
    }
    const h = new RequestHandler(new Boom());
    const parts: DataRequest['header'][] = [];
    for await (const p of h.streamDoc({
      header: { requestId: 'r', execEndpoint: '/gen' },
      parameters: {},
      routes: [],
      document: {},
    }))
      parts.push(p.header);
    expect(parts).toHaveLength(2);
    expect(parts[1]!.status?.description).toBe('Error: stream broke');
  });
});

describe('concurrency', () => {
  it('interleaves async methods and runs sync methods one at a time, in order', async () => {
    const log: string[] = [];
    class Worker extends Executor {
      @requests({ on: '/async' })
      async slow(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
        log.push(`start ${ctx.parameters.i}`);
        await sleep(20);
        log.push(`end ${ctx.parameters.i}`);
      }

      @requests({ on: '/sync' })
      quick(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
        log.push(`start ${ctx.parameters.i}`);
        // A sync method that hands back a promise still holds its turn until it settles.
        return sleep(5).then(() => {
          log.push(`end ${ctx.parameters.i}`);
        });
      }

      @requests({ on: '/sync-concurrent', allowConcurrent: true })
      free(docs: DocList<LegacyDocument>, ctx: RequestContext) {
        return this.quick(docs, ctx);
      }
    }
    const h = new RequestHandler(new Worker());
    const run = (endpoint: string) =>
      Promise.all(Array.from({ length: 10 }, (_, i) => post(h, endpoint, [], { i })));

    await run('/async');
    expect(log.slice(0, 10).every((l) => l.startsWith('start'))).toBe(true);
    log.length = 0;

    await run('/sync');
    expect(log).toEqual(Array.from({ length: 10 }, (_, i) => [`start ${i}`, `end ${i}`]).flat());
    log.length = 0;

    await run('/sync-concurrent');
    expect(log.slice(0, 10).every((l) => l.startsWith('start'))).toBe(true);
  });
});

describe('dynamic batching', () => {
  class Batched extends Executor {
    calls: number[] = [];

    @requests({ on: '/embed', requestSchema: TextIn })
    @dynamicBatching({ preferredBatchSize: 4, timeoutMs: 30 })
    embed(docs: DocList<TextIn>, ctx: RequestContext) {
      this.calls.push(docs.length);
      if (ctx.parameters.broken) return new DocList(TextIn, [{ text: 'only one' }]);
      for (const d of docs) d.text = `${d.text}:${ctx.parameters.tag ?? ''}`;
      return undefined;
    }
  }

  it('flushes on size, keeps per-request order, and queues by parameters', async () => {
    const ex = new Batched();
    const h = new RequestHandler(ex);
    const replies = await Promise.all([
      post(h, '/embed', [{ text: 'a' }, { text: 'b' }], { tag: 'x' }),
      post(h, '/embed', [{ text: 'c' }], { tag: 'y' }),
      post(h, '/embed', [{ text: 'd' }, { text: 'e' }], { tag: 'x' }),
    ]);
    expect(replies.map((r) => (r.docs as DocList<TextIn>).get('text'))).toEqual([
      ['a:x', 'b:x'],
      ['c:y'],
      ['d:x', 'e:x'],
    ]);
    // 'x' filled a batch of 4 at once; 'y' waited for its timeout.
    expect(ex.calls).toEqual([4, 1]);
  });

  it('flushes on timeout and on close', async () => {
    const ex = new Batched();
    const h = new RequestHandler(ex);
    const started = Date.now();
    await post(h, '/embed', [{ text: 'a' }]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    const pending = post(h, '/embed', [{ text: 'b' }]);
    await h.close();
    expect((await pending).header.status).toBeUndefined();
    expect(ex.calls).toEqual([1, 1]);
  });

  it('fails every request of a batch whose output length differs', async () => {
    const h = new RequestHandler(new Batched());
    const replies = await Promise.all([
      post(h, '/embed', [{ text: 'a' }, { text: 'b' }], { broken: true }),
      post(h, '/embed', [{ text: 'c' }, { text: 'd' }], { broken: true }),
    ]);
    for (const r of replies) {
      expect(r.header.status?.description).toContain('returned 1 documents for a batch of 4');
    }
  });
});

describe('process_data (handleMany)', () => {
  it('hands each request docs to docsMatrix and reduces docs by id', async () => {
    class Join extends Executor {
      @requests({ on: '/join' })
      join(docs: DocList<LegacyDocument>, ctx: RequestContext) {
        return {
          matrix: ctx.docsMatrix.map((m) => m.length),
          ids: docs.get('id'),
          texts: docs.get('text'),
        };
      }
    }
    const h = new RequestHandler(new Join({ metas: { name: 'join' } }));
    const a = createDataRequest({
      endpoint: '/join',
      docs: [{ id: '1', text: 'one' }, { id: '2' }],
    });
    const b = createDataRequest({
      endpoint: '/join',
      docs: [
        { id: '2', text: 'two' },
        { id: '3', text: 'three' },
      ],
    });
    a.routes.push({ executor: 'left' });
    b.routes.push({ executor: 'right' });
    const res = await h.handleMany([a, b]);
    expect((res.parameters.__results__ as any).join).toEqual({
      matrix: [2, 2],
      ids: ['1', '2', '3'],
      texts: ['one', 'two', 'three'],
    });
    expect(res.routes.map((r) => r.executor)).toEqual(['left', 'right', 'join']);

    // noReduce (Jina's no_reduce): docs is every incoming document, duplicates kept, in order.
    const raw = new RequestHandler(new Join({ metas: { name: 'join' } }), { noReduce: true });
    const unreduced = await raw.handleMany([a, b]);
    expect((unreduced.parameters.__results__ as any).join).toEqual({
      matrix: [2, 2],
      ids: ['1', '2', '2', '3'],
      texts: ['one', undefined, 'two', 'three'],
    });
    // One request is the same either way.
    const single = await raw.handleMany([a]);
    expect((single.parameters.__results__ as any).join.ids).toEqual(['1', '2']);
  });
});

describe('inheritance', () => {
  it('inherits endpoint tables; a subclass binding wins', async () => {
    class Base extends Executor {
      @requests({ on: '/a' })
      a() {
        return { who: 'base.a' };
      }
      @requests({ on: '/b' })
      b() {
        return { who: 'base.b' };
      }
    }
    class Child extends Base {
      @requests({ on: '/b' })
      other() {
        return { who: 'child.other' };
      }
      override a() {
        return { who: 'child.a' };
      }
    }
    const base = new RequestHandler(new Base({ metas: { name: 'x' } }));
    const child = new RequestHandler(new Child({ metas: { name: 'x' } }));
    const who = async (h: RequestHandler, e: string) =>
      ((await post(h, e)).parameters.__results__ as any).x.who;
    expect(await who(base, '/a')).toBe('base.a');
    expect(await who(base, '/b')).toBe('base.b');
    expect(await who(child, '/a')).toBe('child.a');
    expect(await who(child, '/b')).toBe('child.other');
  });
});
