import type { BatchEvent } from './batcher.js';
import type { DataRequest, SingleDocumentRequest } from './data-request.js';
import type { Endpoint, EndpointListing } from './endpoints.js';
import type { HandleOptions } from './request-context.js';

/**
 * What a transport serves: DataRequests in and out, plus the endpoint listing. A RequestHandler
 * (one executor) is one; a gateway walking a Flow's graph will be another, served the same way.
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
  /** The endpoint that would serve `name`, for codecs that need its document schemas. */
  endpointFor(
    name: string | undefined,
  ): Pick<Endpoint, 'requestSchema' | 'responseSchema'> | undefined;
  /** Sends pending work (dynamic batches) now; shutdown calls it. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** What `_status` and `/status` report: the kind of runtime (the executor's class name). */
  readonly kind: string;
  /**
   * True for a gateway: it may take requests whose documents are still serialized (`docsBytes`)
   * and forward them unread; transports that can (gRPC) then skip decoding them.
   */
  readonly passesDocsThrough?: boolean;
  /** Whether it can serve now (an executor's GPU health); serving when absent. */
  health?(): Readonly<{ serving: boolean; reason: string }>;
  onHealthChange?(fn: (health: Readonly<{ serving: boolean; reason: string }>) => void): () => void;
  /** Dynamic batching (an executor's): every batch sent, and the documents waiting (metrics). */
  onBatch?(fn: (event: BatchEvent) => void): () => void;
  batchQueues?(): { endpoint: string; documents: number }[];
  /** Present when the runtime can snapshot its state (JinaExecutorSnapshot). */
  snapshot?: () => Promise<string>;
  restore?: (file: string) => Promise<void>;
}
