import {
  contextFromTraceparent,
  createDataRequest,
  currentTraceparent,
  Executor,
  injectContext,
  RequestHandler,
  requests,
  SpanKind,
  traced,
  tracingEnabled,
  withContext,
} from '@marie/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { startTracing } from './tracing.js';

class Echo extends Executor {
  @requests({ on: '/echo' })
  echo() {}

  @requests({ on: '/boom' })
  boom() {
    throw new Error('boom');
  }
}

/** Keeps what it is sent, as a collector would. */
function memoryExporter(): SpanExporter & { spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = [];
  return {
    spans,
    export(batch, done) {
      spans.push(...batch);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
}

describe('startTracing', () => {
  it('records the spans the packages open (through the API only) and exports them at shutdown', async () => {
    expect(tracingEnabled()).toBe(false);
    const exporter = memoryExporter();
    const tracing = startTracing({ serviceName: 'unit', exporter, exportIntervalMs: 60_000 });
    expect(startTracing({ serviceName: 'again' })).toBe(tracing); // once per process
    expect(tracingEnabled()).toBe(true);

    const handler = new RequestHandler(new Echo({ metas: { name: 'echo' } }));
    // A caller's context (what a server reads from `traceparent`): the method's span is its child.
    const parent = contextFromTraceparent(
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    );
    await withContext(parent, () =>
      handler.handle(createDataRequest({ endpoint: '/echo', docs: [{ id: 'a' }, { id: 'b' }] })),
    );
    await handler.handle(createDataRequest({ endpoint: '/boom' }));
    // What a client writes into its metadata or headers, inside a span of its own.
    let written: Record<string, string> = {};
    await traced('client call', { kind: SpanKind.CLIENT }, async () => {
      written = {};
      injectContext((k, v) => {
        written[k] = v;
      });
      expect(currentTraceparent()).toBe(written.traceparent);
    });
    await tracing.shutdown();

    const echo = exporter.spans.find((s) => s.name === 'Echo /echo')!;
    expect(echo.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(echo.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(echo.attributes).toMatchObject({ 'marie.executor': 'echo', 'marie.docs': 2 });
    expect(echo.resource.attributes['service.name']).toBe('unit');
    expect(echo.resource.attributes['process.pid']).toBe(process.pid);
    const boom = exporter.spans.find((s) => s.name === 'Echo /boom')!;
    expect(boom.status).toMatchObject({ code: 2, message: 'boom' });
    expect(boom.events.map((e) => e.name)).toContain('exception');
    const client = exporter.spans.find((s) => s.name === 'client call')!;
    expect(written.traceparent).toBe(
      `00-${client.spanContext().traceId}-${client.spanContext().spanId}-01`,
    );
  });
});
