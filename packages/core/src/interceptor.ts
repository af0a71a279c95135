import type { DocList } from '@marie/docs';
import type { RequestHeader } from './data-request.js';
import type { Executor } from './executor.js';

/** One endpoint call as an interceptor sees it: validated documents and merged parameters. */
export interface EndpointCall {
  readonly executor: Executor;
  /** The endpoint requested (`/default` when the fallback serves it). */
  readonly endpoint: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly docs: DocList<object>;
  readonly header: Readonly<RequestHeader>;
}

/**
 * The answer of an endpoint call after the return rules have been applied and its results checked
 * to be encodable (so what an interceptor sees is what the client will get).
 */
export interface EndpointAnswer {
  docs: DocList<object>;
  /** The plain object the method returned (`parameters.__results__[name]` on the wire). */
  results?: unknown;
}

/**
 * Wraps endpoint calls, whatever the transport (connect-es style): call `next()` to run the method,
 * look at or replace its answer, or throw to fail the request. Job tracking, metrics and traces hang
 * here, not in the transports.
 */
export type EndpointInterceptor = (
  call: EndpointCall,
  next: () => Promise<EndpointAnswer>,
) => Promise<EndpointAnswer>;

const global: EndpointInterceptor[] = [];
const perExecutor = new WeakMap<Executor, EndpointInterceptor[]>();

/** Registers an interceptor for every executor in this process; returns its removal. */
export function registerInterceptor(interceptor: EndpointInterceptor): () => void {
  global.push(interceptor);
  return () => {
    const i = global.indexOf(interceptor);
    if (i >= 0) global.splice(i, 1);
  };
}

/**
 * Registers an interceptor for one executor instance (a mixin does this in its constructor). It
 * runs inside the ones registered before it, unless `outermost` puts it outside them.
 */
export function useInterceptor(
  executor: Executor,
  interceptor: EndpointInterceptor,
  options: { outermost?: boolean } = {},
): () => void {
  const list = perExecutor.get(executor) ?? [];
  if (options.outermost) list.unshift(interceptor);
  else list.push(interceptor);
  perExecutor.set(executor, list);
  return () => {
    const i = list.indexOf(interceptor);
    if (i >= 0) list.splice(i, 1);
  };
}

/** The interceptors of an executor, process-wide ones first (outermost); empty on the fast path. */
export function interceptorsOf(executor: Executor): readonly EndpointInterceptor[] {
  const own = perExecutor.get(executor);
  if (!own?.length) return global;
  return global.length ? [...global, ...own] : own;
}

/** Runs `last` inside the interceptors, the first one outermost. */
export function runIntercepted(
  interceptors: readonly EndpointInterceptor[],
  call: EndpointCall,
  last: () => Promise<EndpointAnswer>,
): Promise<EndpointAnswer> {
  const step = (i: number): Promise<EndpointAnswer> =>
    i === interceptors.length ? last() : interceptors[i]!(call, () => step(i + 1));
  return step(0);
}
