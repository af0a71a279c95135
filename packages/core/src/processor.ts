import type { BatchEvent } from './batcher.js';
import type { DataRequest, SingleDocumentRequest } from './data-request.js';
import type { EndpointListing } from './endpoints.js';
import type { HandleOptions } from './request-context.js';

type Health = Readonly<{ serving: boolean; reason: string }>;

/**
 * What a transport serves: DataRequests in and out, plus the endpoint listing. An executor's
 * RequestHandler is one, a Flow's Gateway another; wrappers (metrics, hot reload) are Processors
 * that delegate (`DelegatingProcessor`). Every transport serves any of them the same way.
 *
 * The contract of `handle` and `handleMany`, which every Processor keeps and the transports rely
 * on (tests/conformance/processor-contract.spec.ts checks it):
 * - They resolve with the answer. An executor's failure is an answer: `header.status` is ERROR
 *   with the exception (the wire carries it as Jina does: gRPC OK, HTTP 422 or 500).
 * - They reject only when there is no answer to give, and then only with a `MarieError` whose code
 *   says why: the request could not be read or routed (`invalid_argument`), no executor could be
 *   reached (`unavailable`), a hop ran past its deadline (`deadline_exceeded`), the caller went
 *   away (`canceled`), or a fault of the processor's own (`internal`). Transports turn the code
 *   into their wire's status (gRPC codes, HTTP statuses, WebSocket close codes).
 * - `streamDoc` yields answers; a failure that has an answer ends the stream with a part whose
 *   status is ERROR, one that has none throws a `MarieError` as above.
 *
 * An answer's documents carry their type (a DocList's `docType`; a streamed part's `docType`), so
 * a transport encodes them without looking the endpoint up again.
 */
export interface Processor {
  /** The name routes carry and parameters are scoped by. */
  readonly name: string;
  handle(request: DataRequest<any>, options?: HandleOptions): Promise<DataRequest<any>>;
  handleMany(
    requests: readonly DataRequest<any>[],
    options?: HandleOptions,
  ): Promise<DataRequest<any>>;
  streamDoc(
    request: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>>;
  endpoints(): EndpointListing;
  /** Sends pending work (dynamic batches) now; shutdown calls it. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** What `_status` and `/status` report: the kind of runtime (the executor's class name). */
  readonly kind: string;
  /**
   * It may take requests whose documents are still serialized (`docsBytes`): a gateway forwards
   * them unread, an executor's handler reads them when its method first uses them (with the
   * HandleOptions' `docsReader`). Transports that can (gRPC, WebSocket bytes) then skip decoding.
   */
  readonly passesDocsThrough?: boolean;
  /** Whether it can serve now (an executor's GPU health); serving when absent. */
  health?(): Health;
  onHealthChange?(fn: (health: Health) => void): () => void;
  /** Dynamic batching (an executor's): every batch sent, and the documents waiting (metrics). */
  onBatch?(fn: (event: BatchEvent) => void): () => void;
  batchQueues?(): { endpoint: string; documents: number }[];
  /** Present when the runtime can snapshot its state (JinaExecutorSnapshot). */
  snapshot?: () => Promise<string>;
  restore?: (file: string) => Promise<void>;
}

/**
 * A Processor that hands everything to another one, its `target`. Subclasses override what they
 * add to: metrics time `handle`, `marie executor --exit-on-exceptions` watches answers, the hot
 * reloader counts requests per version (and switches its target: it overrides the getter, which
 * every call reads).
 */
export abstract class DelegatingProcessor implements Processor {
  readonly #target: Processor | undefined;

  constructor(target?: Processor) {
    this.#target = target;
  }

  /** The processor this one hands its work to: the constructor's, unless a subclass switches it. */
  protected get target(): Processor {
    if (!this.#target) throw new TypeError(`${this.constructor.name} has no target processor`);
    return this.#target;
  }

  get name(): string {
    return this.target.name;
  }

  get kind(): string {
    return this.target.kind;
  }

  get passesDocsThrough(): boolean {
    return this.target.passesDocsThrough === true;
  }

  handle(request: DataRequest<any>, options?: HandleOptions): Promise<DataRequest<any>> {
    return this.target.handle(request, options);
  }

  handleMany(
    requests: readonly DataRequest<any>[],
    options?: HandleOptions,
  ): Promise<DataRequest<any>> {
    return this.target.handleMany(requests, options);
  }

  streamDoc(
    request: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    return this.target.streamDoc(request, options);
  }

  endpoints(): EndpointListing {
    return this.target.endpoints();
  }

  flush(): Promise<void> {
    return this.target.flush();
  }

  close(): Promise<void> {
    return this.target.close();
  }

  health(): Health {
    return this.target.health?.() ?? SERVING;
  }

  onHealthChange(fn: (health: Health) => void): () => void {
    return this.target.onHealthChange?.(fn) ?? nothing;
  }

  onBatch(fn: (event: BatchEvent) => void): () => void {
    return this.target.onBatch?.(fn) ?? nothing;
  }

  batchQueues(): { endpoint: string; documents: number }[] {
    return this.target.batchQueues?.() ?? [];
  }

  get snapshot(): (() => Promise<string>) | undefined {
    const target = this.target;
    return target.snapshot && (() => target.snapshot!());
  }

  get restore(): ((file: string) => Promise<void>) | undefined {
    const target = this.target;
    return target.restore && ((file) => target.restore!(file));
  }
}

const SERVING: Health = { serving: true, reason: '' };
const nothing = () => {};
