import {
  createDataRequest,
  dynamicBatching,
  Executor,
  RequestHandler,
  registerMetricSource,
  requests,
} from '@marie/core';
import { afterAll, describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

class Echo extends Executor {
  @requests({ on: '/echo' })
  echo(docs: object[]) {
    return docs;
  }

  /** Never looks at its documents. */
  @requests({ on: '/ignore' })
  ignore() {
    return { ignored: true };
  }

  @requests({ on: '/boom' })
  boom() {
    throw new Error('boom');
  }
}

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c();
});

/** A sample's value from the text format: `name{labels} value`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const line = text
    .split('\n')
    .find((l) =>
      l.startsWith(`${name}{`) || l.startsWith(`${name} `)
        ? Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
        : false,
    );
  if (!line) throw new Error(`no sample ${name} ${JSON.stringify(labels)} in:\n${text}`);
  return Number(line.split(' ').at(-1));
}

describe('Metrics', () => {
  it('counts the documents of an answer its method never read, without reading them', async () => {
    const metrics = new Metrics({ runtimeName: 'lazy' });
    const handler = metrics.instrument(new RequestHandler(new Echo()));
    // A transport's serialized documents (here: JSON bytes) and how to read and count them.
    const reads = { n: 0 };
    const docsReader = {
      read: (bytes: Uint8Array) => {
        reads.n++;
        return JSON.parse(new TextDecoder().decode(bytes)) as unknown[];
      },
      count: (bytes: Uint8Array) =>
        (JSON.parse(new TextDecoder().decode(bytes)) as unknown[]).length,
    };
    const docsBytes = new TextEncoder().encode(JSON.stringify([{ id: 'a' }, { id: 'b' }]));
    const res = await handler.handle(
      { ...createDataRequest({ endpoint: '/ignore' }), docsBytes },
      { docsReader },
    );
    expect(res.header.status).toBeUndefined();
    expect(reads.n).toBe(0);
    const server = await metrics.serve({ host: '127.0.0.1', port: 0 });
    closers.push(server.close);
    const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    expect(
      sample(text, 'jina_document_processed_total', {
        executor: 'Echo',
        executor_endpoint: '/ignore',
      }),
    ).toBe(2);
    expect(reads.n).toBe(0);
  });

  it("counts and times an executor's requests under Jina's names, served on /metrics", async () => {
    const metrics = new Metrics({ runtimeName: 'echo' });
    const handler = metrics.instrument(new RequestHandler(new Echo()));
    // The wrapped processor is still the executor's: its listing and health come through.
    expect(handler.endpoints().endpoints).toContain('/echo');
    expect(handler.kind).toBe('Echo');
    for (let i = 0; i < 3; i++)
      await handler.handle(
        createDataRequest({ endpoint: '/echo', docs: [{ id: `d${i}` }, { id: `e${i}` }] }),
      );
    const failed = await handler.handle(createDataRequest({ endpoint: '/boom' }));
    expect(failed.header.status?.description).toContain('boom');

    const server = await metrics.serve({ host: '127.0.0.1', port: 0 });
    closers.push(server.close);
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const rt = { runtime_name: 'echo' };
    expect(sample(text, 'jina_successful_requests_total', rt)).toBe(3);
    expect(sample(text, 'jina_failed_requests_total', rt)).toBe(1);
    expect(sample(text, 'jina_number_of_pending_requests', rt)).toBe(0);
    expect(sample(text, 'jina_receiving_request_seconds_count', rt)).toBe(4);
    expect(
      sample(text, 'jina_process_request_seconds_count', {
        executor: 'Echo',
        executor_endpoint: '/echo',
      }),
    ).toBe(3);
    expect(
      sample(text, 'jina_document_processed_total', {
        executor: 'Echo',
        executor_endpoint: '/echo',
      }),
    ).toBe(6);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
  });

  it('shows a request in flight as pending, and a gateway hop as sending time', async () => {
    let release!: () => void;
    class Slow extends Executor {
      @requests({ on: '/slow' })
      async slow() {
        await new Promise<void>((r) => {
          release = r;
        });
      }
    }
    const metrics = new Metrics({ runtimeName: 'slow', processMetrics: false });
    const handler = metrics.instrument(new RequestHandler(new Slow()));
    const running = handler.handle(createDataRequest({ endpoint: '/slow' }));
    await new Promise((r) => setTimeout(r, 20));
    expect(sample(await metrics.text(), 'jina_number_of_pending_requests')).toBe(1);
    release();
    await running;
    expect(sample(await metrics.text(), 'jina_number_of_pending_requests')).toBe(0);
    const done = metrics.hop('text-extraction');
    done();
    expect(
      sample(await metrics.text(), 'jina_sending_request_seconds_count', {
        deployment: 'text-extraction',
      }),
    ).toBe(1);
  });

  it('measures dynamic batching: batch sizes, and documents waiting while a batch fills', async () => {
    class Batched extends Executor {
      @requests({ on: '/embed' })
      @dynamicBatching({ preferredBatchSize: 4, timeoutMs: 200 })
      embed(docs: object[]) {
        return docs;
      }
    }
    const metrics = new Metrics({ runtimeName: 'batched', processMetrics: false });
    const handler = metrics.instrument(new RequestHandler(new Batched()));
    const labels = { executor: 'Batched', executor_endpoint: '/embed' };
    // 3 documents wait (the batch wants 4); the 4th sends them as one batch of 4.
    const first = [1, 2, 3].map((i) =>
      handler.handle(createDataRequest({ endpoint: '/embed', docs: [{ id: `d${i}` }] })),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(sample(await metrics.text(), 'marie_dynamic_batching_queue_size', labels)).toBe(3);
    await Promise.all([
      ...first,
      handler.handle(createDataRequest({ endpoint: '/embed', docs: [{ id: 'd4' }] })),
    ]);
    const text = await metrics.text();
    expect(sample(text, 'marie_dynamic_batching_batch_size_count', labels)).toBe(1);
    expect(sample(text, 'marie_dynamic_batching_batch_size_sum', labels)).toBe(4);
    expect(sample(text, 'marie_dynamic_batching_batch_size_bucket', { ...labels, le: '2' })).toBe(
      0,
    );
    expect(sample(text, 'marie_dynamic_batching_batch_size_bucket', { ...labels, le: '4' })).toBe(
      1,
    );
    // Nothing waits any more: the queue's series is gone rather than stuck at 3.
    expect(text).not.toContain('marie_dynamic_batching_queue_size{');
    await handler.close();
  });

  it("exposes the process's metric sources at each scrape, and drops a source's series once it is gone", async () => {
    let delivered = 0;
    const remove = registerMetricSource(() => [
      {
        name: 'test_things_total',
        help: 'things',
        type: 'counter',
        labelNames: ['kind'],
        samples: [
          { labels: { kind: 'a' }, value: delivered },
          { labels: { kind: 'b' }, value: 7 },
        ],
      },
      {
        name: 'test_level',
        help: 'a level',
        type: 'gauge',
        labelNames: [],
        samples: [{ value: 0.5 }],
      },
    ]);
    // A failing source is left out; the scrape still answers.
    const removeBroken = registerMetricSource(() => {
      throw new Error('database down');
    });
    const metrics = new Metrics({ runtimeName: 'src', processMetrics: false });
    delivered = 3;
    let text = await metrics.text();
    expect(sample(text, 'test_things_total', { kind: 'a' })).toBe(3);
    expect(sample(text, 'test_things_total', { kind: 'b' })).toBe(7);
    expect(sample(text, 'test_level')).toBe(0.5);
    expect(text).toContain('# TYPE test_things_total counter');
    delivered = 5;
    expect(sample(await metrics.text(), 'test_things_total', { kind: 'a' })).toBe(5);
    remove();
    removeBroken();
    text = await metrics.text();
    expect(text).not.toContain('test_things_total{');
  });
});
