import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';

export type { Context as TraceContext, Span } from '@opentelemetry/api';

import { type DataRequest, StatusCode } from './data-request.js';

export { SpanKind } from '@opentelemetry/api';

// Libraries use only OpenTelemetry's API (OpenTelemetry's own advice for instrumented
// libraries): with no SDK registered every call below is a no-op, and only a process that starts
// tracing (@marie/tracing, or the user's own SDK) records and exports spans.
const tracer = trace.getTracer('marie');

// The API's no-op provider, which the global provider delegates to until an SDK registers one.
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
let on = false;

/** Whether an OpenTelemetry SDK records spans in this process (checked until one does). */
export function tracingEnabled(): boolean {
  if (on) return true;
  const provider = trace.getTracerProvider();
  on =
    provider instanceof ProxyTracerProvider
      ? provider.getDelegate() !== NOOP_PROVIDER
      : provider !== NOOP_PROVIDER;
  return on;
}

/** The span code gets while tracing is off: records nothing. */
export const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export interface SpanOptions {
  kind?: SpanKind;
  /** A function is called only when tracing is on (attributes that cost something to compute). */
  attributes?: Attributes | (() => Attributes);
  /** The parent; the active context unless given (a server passes what its caller sent). */
  parent?: Context;
}

/**
 * Runs `fn` inside a new span (the active one while it runs): ended when `fn` settles, its status
 * ERROR with the exception when `fn` throws. Without tracing, `fn` runs as it is.
 */
export function traced<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return fn(NO_SPAN);
  const attributes =
    typeof options.attributes === 'function' ? options.attributes() : options.attributes;
  return tracer.startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, ...(attributes ? { attributes } : {}) },
    options.parent ?? context.active(),
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        failSpan(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** Marks a span failed (an error answer that is not a thrown exception, say). */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

const getter: TextMapGetter<(key: string) => string | undefined> = {
  get: (read, key) => read(key),
  keys: () => ['traceparent', 'tracestate', 'baggage'],
};

/**
 * The context a caller sent (W3C `traceparent`, `tracestate`), read through `read` from HTTP
 * headers or gRPC metadata; the root context when there is none or tracing is off.
 */
export function extractContext(read: (key: string) => string | undefined): Context {
  if (!tracingEnabled()) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, read, getter);
}

/** Writes the active context (`traceparent`, `tracestate`) through `write`: outgoing headers or metadata. */
export function injectContext(write: (key: string, value: string) => void): void {
  if (!tracingEnabled()) return;
  propagation.inject(context.active(), write, { set: (w, k, v) => w(k, v) });
}

/**
 * The active context's `traceparent` as a string (stored beside work that runs later, a queued
 * job), or undefined.
 */
export function currentTraceparent(): string | undefined {
  let out: string | undefined;
  injectContext((k, v) => {
    if (k === 'traceparent') out = v;
  });
  return out;
}

/** A context from a stored `traceparent` (a job's), for the work that picks it up. */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  return traceparent === undefined
    ? ROOT_CONTEXT
    : extractContext((k) => (k === 'traceparent' ? traceparent : undefined));
}

/** Runs `fn` with `ctx` active (for code that must carry a caller's context into callbacks). */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/**
 * A server's work on one request inside a SERVER span whose parent is what the caller sent (the
 * transports read it from metadata or headers); an answer with an ERROR status marks the span
 * failed. Without tracing, the work runs as it is.
 */
export function traceServed(
  name: string,
  parent: Context | undefined,
  attributes: () => Attributes,
  work: () => Promise<DataRequest<any>>,
): Promise<DataRequest<any>> {
  if (!tracingEnabled()) return work();
  return traced(
    name,
    { kind: SpanKind.SERVER, attributes, ...(parent ? { parent } : {}) },
    async (span) => {
      const res = await work();
      if (res.header.status?.code === StatusCode.ERROR)
        failSpan(span, res.header.status.description);
      return res;
    },
  );
}
