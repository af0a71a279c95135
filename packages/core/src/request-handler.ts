import { type AnyDocType, coerce, DocList, DocValidationError, isPlainObject } from '@marie/docs';
import type { Logger } from 'pino';
import { type BatchEvent, Batcher } from './batcher.js';
import {
  createDataRequest,
  type DataRequest,
  errorStatus,
  type RequestHeader,
  type SingleDocumentRequest,
  throwIfError,
} from './data-request.js';
import {
  type Endpoint,
  type EndpointListing,
  listEndpoints,
  resolveEndpoints,
  routeEndpoint,
} from './endpoints.js';
import { ErrorCode, MarieError } from './errors.js';
import type { Executor } from './executor.js';
import { type EndpointAnswer, interceptorsOf, runIntercepted } from './interceptor.js';
import { NEVER_ABORTED } from './lazy-signal.js';
import { createLogger, type LogContext, withLogContext } from './logger.js';
import { Mutex } from './mutex.js';
import type { Processor } from './processor.js';
import { mergeRequests, reduceDocs } from './reduce.js';
import { type HandleOptions, LazySignalContext, type RequestContext } from './request-context.js';
import { DRY_RUN_ENDPOINT } from './requests.js';
import { applyReturn, badReturn, checkEncodable } from './return-rules.js';
import { failSpan, NO_SPAN, type Span, traced, tracingEnabled } from './tracing.js';

export interface RequestHandlerOptions {
  logger?: Logger;
  /**
   * Joined requests (process_data, a Flow's `needs`): `docs` is every incoming document in order,
   * duplicates kept, instead of the documents merged by id; `docsMatrix` is the same either way.
   * Jina's `no_reduce`, for executors that reduce `docsMatrix` themselves.
   */
  noReduce?: boolean;
}

/**
 * The transport-agnostic core of serving: a DataRequest in, a DataRequest out, following the
 * dispatch rules of spec/wire.md. It holds no sockets; every transport is a translator around it.
 */
export class RequestHandler implements Processor {
  readonly executor: Executor;
  /**
   * Requests may come with their documents serialized (`docsBytes`, read with the caller's
   * `docsReader`): they are read when the method first uses them, and a method that never does
   * answers with the bytes they came in.
   */
  readonly passesDocsThrough = true;
  readonly snapshot?: () => Promise<string>;
  readonly restore?: (file: string) => Promise<void>;
  readonly #endpoints: Map<string, Endpoint>;
  readonly #mutex = new Mutex();
  readonly #batcher: Batcher;
  readonly #logger: Logger;
  readonly #noReduce: boolean;
  #listing?: EndpointListing;
  #closing?: Promise<void>;
  #opening?: Promise<void>;
  #opened = false;

  constructor(executor: Executor, options: RequestHandlerOptions = {}) {
    this.executor = executor;
    this.#endpoints = resolveEndpoints(executor);
    // Snapshot support is the executor's own `snapshot()`/`restore(file)`, when it has them.
    const own = executor as unknown as {
      snapshot?: () => unknown;
      restore?: (file: string) => unknown;
    };
    if (typeof own.snapshot === 'function')
      this.snapshot = async () => String(await own.snapshot!());
    if (typeof own.restore === 'function')
      this.restore = async (file) => void (await own.restore!(file));
    this.#logger = options.logger ?? createLogger(executor.runtimeArgs.name);
    this.#noReduce = options.noReduce ?? false;
    this.#batcher = new Batcher((endpoint, docs, parameters) =>
      this.#invoke(
        endpoint,
        docs,
        this.#context(endpoint, docs, parameters, { requestId: 'batch' }, NEVER_ABORTED),
      ),
    );
  }

  /** Whether the executor can serve now (what health checks report). */
  health(): Readonly<{ serving: boolean; reason: string }> {
    return this.executor.health;
  }

  /** Calls `fn` when the executor's health changes; returns its removal. */
  onHealthChange(fn: (health: Readonly<{ serving: boolean; reason: string }>) => void): () => void {
    return this.executor.onHealthChange(fn);
  }

  /** The executor's class name, which `_status` reports. */
  get kind(): string {
    return this.executor.constructor.name;
  }

  /** The name routes carry and parameters are scoped by. */
  get name(): string {
    return this.executor.runtimeArgs.name;
  }

  /** Bound endpoints, the reserved dry-run one included, and their JSON Schemas (endpoint_discovery). */
  endpoints(): EndpointListing {
    this.#listing ??= listEndpoints(this.#endpoints);
    return this.#listing;
  }

  /** The endpoint that would serve `name` (its own, else `/default`), for codecs that need its schemas. */
  endpointFor(name: string | undefined): Endpoint | undefined {
    return routeEndpoint(this.#endpoints, name);
  }

  /**
   * Calls an endpoint in process: the same validation and return rules as over the network. Resolves
   * to the answer's documents; an error status rejects with a MarieError. (`handle` gives the whole
   * answer, `parameters.__results__` included.)
   */
  async post<D extends object = Record<string, unknown>>(
    endpoint: string,
    docs: DocList<any> | readonly unknown[] = [],
    options: HandleOptions & { parameters?: Record<string, unknown> } = {},
  ): Promise<DocList<D>> {
    const req = createDataRequest({ endpoint, docs, parameters: options.parameters ?? {} });
    const res = await this.handle(req, options);
    throwIfError(res);
    return res.docs as DocList<D>;
  }

  /**
   * Serves one request (Processor's contract): the executor's failures, bad documents and bad
   * parameters included, come back as answers whose `header.status` is ERROR; it rejects (with a
   * MarieError) only on a fault of its own.
   */
  handle(request: DataRequest<any>, options: HandleOptions = {}): Promise<DataRequest<any>> {
    return withLogContext(logContextOf(request), () => this.#serve([request], options));
  }

  /** Serves several requests joined into one (process_data): `ctx.docsMatrix` holds each one's docs. */
  handleMany(
    requests: readonly DataRequest<any>[],
    options: HandleOptions = {},
  ): Promise<DataRequest<any>> {
    if (requests.length === 0)
      return Promise.reject(new MarieError(ErrorCode.InvalidArgument, 'no requests'));
    return withLogContext(logContextOf(requests[0]!), () => this.#serve(requests, options));
  }

  /**
   * Serves a generator endpoint for one document: one answer per yielded document. A failure ends
   * the stream with an answer whose status is ERROR. Other endpoints answer with their documents.
   */
  async *streamDoc(
    request: SingleDocumentRequest<any>,
    options: HandleOptions = {},
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    const endpoint = this.endpointFor(request.header.execEndpoint);
    const answer = (
      document: object,
      header: RequestHeader = { requestId: request.header.requestId },
      docType?: AnyDocType,
    ): SingleDocumentRequest<any> => ({
      header,
      parameters: request.parameters,
      routes: [...request.routes, { executor: this.name }],
      document,
      ...(docType ? { docType } : {}),
    });
    if (!endpoint?.isGenerator) {
      const res = await this.handle({ ...request, docs: [request.document] }, options);
      const type = res.docs instanceof DocList ? (res.docs.docType as AnyDocType) : undefined;
      if (res.header.status?.code) yield answer({}, res.header);
      else for (const doc of res.docs as object[]) yield answer(doc, undefined, type);
      return;
    }
    try {
      const docs = this.#docsOf(endpoint.requestSchema, [request.document]);
      const ctx = this.#context(
        endpoint,
        docs,
        this.#parameters(endpoint, request.parameters),
        request.header,
        options.signal ?? NEVER_ABORTED,
      );
      const stream = this.#generate(endpoint, docs[0]!, ctx);
      for await (const doc of stream) yield answer(doc, undefined, endpoint.responseSchema);
    } catch (err) {
      yield answer(
        {},
        { ...request.header, status: this.#failure(err, endpoint, request.header.requestId) },
      );
    }
  }

  /**
   * Runs the executor's `open()` (connections, models) once; serving calls it before the first
   * request, and a runtime awaits it before it reports ready so that a bad database URL stops
   * startup instead of failing every request.
   */
  open(): Promise<void> {
    this.#opening ??= Promise.resolve()
      .then(() => this.executor.open())
      .then(
        () => {
          this.#opened = true;
        },
        (err: unknown) => {
          this.#opening = undefined; // the next request tries again
          throw err;
        },
      );
    return this.#opening;
  }

  /** Calls `fn` for every dynamic batch sent to a method (metrics); returns its removal. */
  onBatch(fn: (event: BatchEvent) => void): () => void {
    return this.#batcher.onBatch(fn);
  }

  /** Documents waiting in dynamic batching queues, per endpoint. */
  batchQueues(): { endpoint: string; documents: number }[] {
    return this.#batcher.queued();
  }

  /** Sends every pending dynamic batch now and waits for the batches in flight (shutdown). */
  flush(): Promise<void> {
    return this.#batcher.drain();
  }

  /** Flushes pending batches, then closes the executor (once). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#batcher.drain();
      await this.executor.close();
    })();
    return this.#closing;
  }

  /**
   * The answer. Everything the executor does is caught in `#serveEndpoint`; what could fail out
   * here (joining requests) rejects as a MarieError (no extra promise on the hot path for it).
   */
  async #serve(
    requests: readonly DataRequest<any>[],
    options: HandleOptions,
  ): Promise<DataRequest<any>> {
    const first = requests[0]!;
    const name = first.header.execEndpoint;
    let base: DataRequest<any>;
    try {
      base = requests.length === 1 ? first : mergeRequests(requests);
    } catch (err) {
      throw MarieError.from(err, ErrorCode.Internal);
    }
    const routes = [...base.routes, { executor: this.name }];
    if (name === DRY_RUN_ENDPOINT) {
      try {
        await this.executor.dryRun();
        return { ...base, routes };
      } catch (err) {
        const status = errorStatus(err, this.executor.constructor.name);
        return { ...base, header: { ...base.header, status }, routes };
      }
    }
    const endpoint = this.endpointFor(name);
    if (!endpoint) return base; // no binding, no /default: unchanged, as Python peers do
    // Tracing off: no span's name, attributes or closures made for nothing.
    if (!tracingEnabled())
      return this.#serveEndpoint(requests, base, routes, endpoint, options, NO_SPAN);
    return traced(
      `${this.kind} ${name ?? endpoint.name}`,
      {
        attributes: () => ({
          'marie.executor': this.name,
          'marie.endpoint': name ?? endpoint.name,
          'marie.docs': requests.reduce(
            (n, r) =>
              n +
              (r.docsBytes && options.docsReader
                ? options.docsReader.count(r.docsBytes)
                : (r.docs?.length ?? 0)),
            0,
          ),
        }),
      },
      (span) => this.#serveEndpoint(requests, base, routes, endpoint, options, span),
    );
  }

  async #serveEndpoint(
    requests: readonly DataRequest<any>[],
    base: DataRequest<any>,
    routes: DataRequest['routes'],
    endpoint: Endpoint,
    options: HandleOptions,
    span: Span,
  ): Promise<DataRequest<any>> {
    const first = requests[0]!;
    const name = first.header.execEndpoint;
    try {
      const matrix = requests.map((r) => this.#requestDocs(endpoint.requestSchema, r, options));
      const docs =
        matrix.length === 1 || !this.#noReduce
          ? reduceDocs(matrix)
          : new DocList(endpoint.requestSchema as AnyDocType & { static: object }, matrix.flat());
      // Parameters the endpoint's schema refuses fail the call inside the interceptors, which see
      // them as sent: a job-tracked request with a bad parameter is a FAILED job, not a lost one.
      let invalid: unknown;
      let parameters: Record<string, unknown>;
      try {
        parameters = this.#parameters(endpoint, base.parameters);
      } catch (err) {
        invalid = err;
        parameters = this.#scoped(base.parameters);
      }
      const ctx = this.#context(
        endpoint,
        docs,
        parameters,
        first.header,
        options.signal ?? NEVER_ABORTED,
        matrix,
      );
      if (this.#opened !== true) await this.open();
      const run = async (): Promise<EndpointAnswer> => {
        if (invalid !== undefined) throw invalid;
        const answer = endpoint.batching
          ? await this.#batcher.submit(endpoint, docs, parameters)
          : applyReturn(this.kind, endpoint, await this.#invoke(endpoint, docs, ctx), docs);
        if (answer.results !== undefined)
          checkEncodable(this.kind, endpoint, this.name, answer.results);
        return answer;
      };
      const interceptors = interceptorsOf(this.executor);
      const { docs: outDocs, results } = interceptors.length
        ? await runIntercepted(
            interceptors,
            {
              executor: this.executor,
              endpoint: name ?? endpoint.name,
              parameters,
              docs,
              header: first.header,
            },
            run,
          )
        : await run();
      // The answer's documents are outDocs, whatever the request's bytes were.
      const { docsBytes: _read, ...rest } = base;
      const out: DataRequest<any> = { ...rest, routes, docs: outDocs };
      if (results !== undefined) {
        const previous = isPlainObject(base.parameters.__results__)
          ? base.parameters.__results__
          : {};
        out.parameters = { ...base.parameters, __results__: { ...previous, [this.name]: results } };
      }
      return out;
    } catch (err) {
      failSpan(span, err);
      const status = this.#failure(err, endpoint, first.header.requestId);
      return { ...base, header: { ...base.header, status }, routes };
    }
  }

  #failure(err: unknown, endpoint: Endpoint, requestId: string) {
    const error = err instanceof DocValidationError ? MarieError.from(err) : err;
    const expected = error instanceof MarieError && error.code === ErrorCode.InvalidArgument;
    this.#logger[expected ? 'warn' : 'error'](
      { err, endpoint: endpoint.name, requestId },
      expected ? 'rejected request' : 'endpoint failed',
    );
    return errorStatus(error, this.executor.constructor.name);
  }

  /** A request's documents as a DocList of `schema`; serialized ones are read on first use. */
  #requestDocs(
    schema: AnyDocType,
    request: DataRequest<any>,
    options: HandleOptions,
  ): DocList<object> {
    const bytes = request.docsBytes;
    if (bytes === undefined) return this.#docsOf(schema, request.docs);
    const reader = options.docsReader;
    if (!reader)
      throw new MarieError(
        ErrorCode.Internal,
        'a request came with serialized documents and no docsReader to read them',
      );
    return DocList.lazy(schema as AnyDocType & { static: object }, () => reader.read(bytes), {
      source: bytes,
      count: () => reader.count(bytes),
    });
  }

  #docsOf(schema: AnyDocType, docs: DataRequest['docs']): DocList<object> {
    if (docs instanceof DocList && docs.docType === schema) return docs;
    return new DocList(schema as AnyDocType & { static: object }, docs as object[]);
  }

  /** `parameters[<this executor's name>]` merged over the rest (spec/wire.md). */
  #scoped(parameters: Record<string, unknown>): Record<string, unknown> {
    const own = parameters[this.name];
    return isPlainObject(own) ? { ...parameters, ...own } : { ...parameters };
  }

  /** The parameters a method sees: scoped, then checked against its schema (defaults applied). */
  #parameters(endpoint: Endpoint, parameters: Record<string, unknown>): Record<string, unknown> {
    const merged = this.#scoped(parameters);
    if (!endpoint.parametersSchema) return merged;
    return coerce(endpoint.parametersSchema, merged, 'parameters') as Record<string, unknown>;
  }

  #context(
    endpoint: Endpoint,
    docs: DocList<object>,
    parameters: Record<string, unknown>,
    header: RequestHeader,
    signal: AbortSignal | (() => AbortSignal),
    docsMatrix: DocList<object>[] = [docs],
  ): RequestContext {
    if (typeof signal !== 'function')
      return { parameters, docsMatrix, header, signal, endpoint: endpoint.name };
    return new LazySignalContext(parameters, docsMatrix, header, endpoint.name, signal);
  }

  /** Calls the method; sync methods one at a time unless the endpoint allows concurrency. */
  #invoke(endpoint: Endpoint, docs: DocList<object>, ctx: RequestContext): Promise<unknown> {
    const call = () => this.#call(endpoint, docs, ctx);
    const serial =
      (endpoint.kind === 'sync' || endpoint.kind === 'generator') && !endpoint.allowConcurrent;
    return serial ? this.#mutex.run(call) : call();
  }

  async #call(endpoint: Endpoint, docs: DocList<object>, ctx: RequestContext): Promise<unknown> {
    const fn = this.#method(endpoint);
    if (endpoint.isGenerator) {
      const out: object[] = [];
      for (const doc of docs) for await (const d of this.#generate(endpoint, doc, ctx)) out.push(d);
      return new DocList(endpoint.responseSchema, out, { trusted: true });
    }
    if (endpoint.single) {
      const out: object[] = [];
      for (const doc of docs) {
        const r = await fn.call(this.executor, doc, ctx);
        if (r !== undefined && r !== null && !isPlainObject(r)) {
          throw badReturn(this.kind, endpoint, r, 'a document or nothing');
        }
        out.push(r ?? doc);
      }
      return new DocList(endpoint.responseSchema, out);
    }
    return fn.call(this.executor, docs, ctx);
  }

  async *#generate(endpoint: Endpoint, doc: object, ctx: RequestContext): AsyncGenerator<object> {
    const iterator = this.#method(endpoint).call(this.executor, doc, ctx) as AsyncIterable<unknown>;
    let i = 0;
    for await (const item of iterator) {
      yield new DocList(endpoint.responseSchema, [item as object], { path: `yield[${i++}]` })[0]!;
    }
  }

  #method(endpoint: Endpoint): (...args: unknown[]) => unknown {
    return (this.executor as any)[endpoint.method];
  }
}

/** The request id and job id (`parameters.job_id`) its log lines carry. */
export function logContextOf(request: DataRequest<any>): LogContext {
  const job = request.parameters?.job_id;
  return typeof job === 'string' || typeof job === 'number'
    ? { request_id: request.header.requestId, job_id: String(job) }
    : { request_id: request.header.requestId };
}
