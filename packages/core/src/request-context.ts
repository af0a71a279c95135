import type { DocList } from '@marie/docs';
import type { RequestHeader } from './data-request.js';
import { NEVER_ABORTED } from './lazy-signal.js';

/** What an endpoint method gets beside its documents. */
export interface RequestContext<P = Record<string, unknown>> {
  /** The request's parameters, `parameters[<executor name>]` merged over them; typed when the endpoint declares a schema. */
  parameters: P;
  /** One DocList per incoming request when several were joined (Flow `needs`); else `[docs]`. */
  docsMatrix: DocList<object>[];
  header: Readonly<RequestHeader>;
  /** Aborted when the caller gives up (client gone, deadline passed, server shutting down). */
  signal: AbortSignal;
  /** The endpoint being served (`/default` for the fallback, the requested one otherwise). */
  endpoint: string;
}

export interface HandleOptions {
  /**
   * Aborted when the caller gives up. A function is called the first time a method reads
   * `ctx.signal`: transports pass one so that a call nobody listens on costs no AbortController.
   */
  signal?: AbortSignal | (() => AbortSignal);
  /** The caller can send an answer whose documents are still serialized (`docsBytes`): gRPC can. */
  docsBytes?: boolean;
  /**
   * How the caller's serialized documents (a request's `docsBytes`) are read: an executor's
   * handler reads them when its method first uses them (`DocList.lazy`), and a list the method
   * never looked at goes back as the bytes it came in. Transports that decode requests pass it.
   */
  docsReader?: DocsReader;
}

/** Reads serialized documents (a transport's wire format) into plain values, and counts them. */
export interface DocsReader {
  /** The documents as plain values; a DocValidationError names what is wrong. */
  read(bytes: Uint8Array): readonly unknown[];
  /** How many documents the bytes hold, without reading them. */
  count(bytes: Uint8Array): number;
}

/**
 * A context for calling an endpoint method directly (unit tests, scripts):
 * `executor.process(docs, createRequestContext({ parameters: { job_id: 'j1' } }))`.
 */
export function createRequestContext<P = Record<string, unknown>>(
  init: Partial<RequestContext<P>> = {},
): RequestContext<P> {
  return {
    parameters: init.parameters ?? ({} as P),
    docsMatrix: init.docsMatrix ?? [],
    header: init.header ?? { requestId: 'local' },
    signal: init.signal ?? NEVER_ABORTED,
    endpoint: init.endpoint ?? '/default',
  };
}

/** A method's context whose `signal` is made the first time it is read (most methods never do). */
export class LazySignalContext implements RequestContext {
  #signal: AbortSignal | undefined;
  readonly #make: () => AbortSignal;

  constructor(
    public parameters: Record<string, unknown>,
    public docsMatrix: DocList<object>[],
    public header: RequestHeader,
    public endpoint: string,
    make: () => AbortSignal,
  ) {
    this.#make = make;
  }

  get signal(): AbortSignal {
    this.#signal ??= this.#make();
    return this.#signal;
  }
}
