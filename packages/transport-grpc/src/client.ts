import * as grpc from '@grpc/grpc-js';
import {
  checkTlsClient,
  type DataRequest,
  ErrorCode,
  injectContext,
  MarieError,
  type PostOptions,
  postRequests,
  type SingleDocumentRequest,
  StatusCode,
  type TlsClientOptions,
  throwIfError,
} from '@marie/core';
import { AnyDoc, type AnyDocType, DocList, newDocId, type TSchema } from '@marie/docs';
import {
  decodeDataRequest,
  encodeDataRequest,
  health,
  jina,
  singleDocRequestFromProto,
  singleDocRequestToProto,
  statusFromProto,
} from '@marie/proto';
import { fromGrpcError } from './codes.js';
import { asBuffer } from './definitions.js';

export interface GrpcClientOptions {
  host: string;
  port: number;
  /**
   * TLS: true for the system roots, or `ca` (PEM) to trust instead; `cert` and `key` (PEM) present
   * a client certificate to servers that ask for one (mutual TLS).
   */
  tls?: boolean | TlsClientOptions;
  /** Sent as `authorization: Bearer <key>` metadata on every call (a gateway's API keys). */
  apiKey?: string;
  /** Channels (separate connections) requests are spread over; 2 unless given. */
  poolSize?: number;
  /** Largest message accepted and sent; unlimited unless given. */
  maxMessageBytes?: number;
  /** Keepalive ping interval; 10 s, as Python peers use. */
  keepaliveMs?: number;
  /**
   * Resolve every address of `host` (DNS, re-resolved when connections fail) and spread calls
   * over them round robin: the replicas behind a Kubernetes headless Service, say.
   */
  allAddresses?: boolean;
}

export type { PostOptions } from '@marie/core';

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;

const bytesOut = (b: Uint8Array) => asBuffer(b);

/**
 * A gRPC client of one Marie/Jina runtime (executor, head or gateway), spreading calls over a pool
 * of connections. Documents go over `JinaRPC/Call`, `requestSize` per request.
 */
export class GrpcClient {
  readonly #pool: grpc.Client[];
  #next = 0;
  readonly target: string;
  readonly #apiKey: string | undefined;

  constructor(options: GrpcClientOptions) {
    const host =
      options.host.includes(':') && !options.host.startsWith('[')
        ? `[${options.host}]`
        : options.host;
    this.target = `${options.allAddresses ? 'dns:///' : ''}${host}:${options.port}`;
    this.#apiKey = options.apiKey;
    const pem = (v: Buffer | string | undefined) => (v === undefined ? null : Buffer.from(v));
    const tls = checkTlsClient(typeof options.tls === 'object' ? options.tls : {});
    const credentials = options.tls
      ? grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert))
      : grpc.credentials.createInsecure();
    const limit = options.maxMessageBytes ?? -1;
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      'grpc.keepalive_time_ms': options.keepaliveMs ?? 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // One connection per pool member, not one shared subchannel.
      'grpc.use_local_subchannel_pool': 1,
      ...(options.allAddresses
        ? {
            'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
          }
        : {}),
    };
    this.#pool = Array.from(
      { length: Math.max(1, options.poolSize ?? 2) },
      () => new grpc.Client(this.target, credentials, channelOptions),
    );
  }

  #client(): grpc.Client {
    const c = this.#pool[this.#next]!;
    this.#next = (this.#next + 1) % this.#pool.length;
    return c;
  }

  /** A call's metadata: the active trace context (W3C traceparent) and the API key, if any. */
  #metadata(): grpc.Metadata {
    const m = new grpc.Metadata();
    injectContext((key, value) => m.set(key, value));
    if (this.#apiKey !== undefined) m.set('authorization', `Bearer ${this.#apiKey}`);
    return m;
  }

  #callOptions(timeoutMs?: number): grpc.CallOptions {
    return timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
  }

  #unary<Req, Res>(
    path: string,
    message: Req,
    encode: (m: Req) => Uint8Array,
    decode: (b: Buffer) => Res,
    timeoutMs?: number,
    signal?: AbortSignal,
  ): Promise<Res> {
    // Encoded here rather than by grpc-js, whose serializer failures become INTERNAL: a message
    // that cannot be encoded (documents nested past the stack) is the caller's input at fault.
    let bytes: Buffer;
    try {
      bytes = asBuffer(encode(message));
    } catch (err) {
      return Promise.reject(MarieError.from(err));
    }
    return new Promise<Res>((resolve, reject) => {
      const call = this.#client().makeUnaryRequest(
        path,
        (b: Buffer) => b,
        decode,
        bytes,
        this.#metadata(),
        this.#callOptions(timeoutMs),
        ((err, value) =>
          err ? reject(fromGrpcError(err)) : resolve(value as Res)) as Callback<Res>,
      );
      signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  /**
   * Sends one DataRequest with process_single_data and returns the answer as it is (status
   * included). With `docsBytes`, the answer's documents stay serialized (a gateway's hop).
   */
  send(
    request: DataRequest<any>,
    options: {
      timeoutMs?: number;
      signal?: AbortSignal;
      requestSchema?: TSchema;
      docsBytes?: boolean;
    } = {},
  ): Promise<DataRequest> {
    const decode = options.docsBytes
      ? (b: Uint8Array) => decodeDataRequest(b, { docsBytes: true })
      : decodeDataRequest;
    return this.#unary(
      '/jina.JinaSingleDataRequestRPC/process_single_data',
      request,
      (r) => encodeDataRequest(r, options.requestSchema),
      decode,
      options.timeoutMs,
      options.signal,
    );
  }

  /** Sends several requests joined with process_data: the executor sees their docs as `docsMatrix`. */
  sendMany(
    requests: DataRequest<any>[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<DataRequest> {
    return this.#unary(
      '/jina.JinaDataRequestRPC/process_data',
      requests,
      (rs) =>
        jina.DataRequestListProto.encode({
          requests: rs.map((r) => jina.DataRequestProto.decode(encodeDataRequest(r))),
        }).finish(),
      decodeDataRequest,
      options.timeoutMs,
      options.signal,
    );
  }

  /**
   * Posts documents to an endpoint and resolves to the answer's documents. A remote error rejects
   * with a MarieError carrying the remote exception (name, args, stack lines, executor).
   */
  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const { requests, schema } = postRequests(on, docs, options);
    const answers = await new Promise<DataRequest[]>((resolve, reject) => {
      const order = new Map<string, number>();
      const results: (DataRequest | undefined)[] = [];
      const arrived: DataRequest[] = [];
      const call = this.#client().makeBidiStreamRequest(
        '/jina.JinaRPC/Call',
        bytesOut,
        (b: Buffer) => decodeDataRequest(b),
        this.#metadata(),
        this.#callOptions(options.timeoutMs),
      );
      let failed = false;
      const fail = (err: MarieError) => {
        if (failed) return;
        failed = true;
        call.cancel();
        reject(err);
      };
      options.signal?.addEventListener(
        'abort',
        () => fail(new MarieError(ErrorCode.Canceled, 'the call was aborted')),
        { once: true },
      );
      let done = 0;
      call.on('data', (res: DataRequest) => {
        options.onProgress?.({ done: ++done, total: requests.length });
        if (res.header.status?.code === StatusCode.ERROR) {
          const err = remoteError(res);
          if (!options.continueOnError) return fail(err);
          options.onError?.(err);
          return;
        }
        const index = order.get(res.header.requestId);
        if (index !== undefined) results[index] = res;
        arrived.push(res);
      });
      call.on('error', (err: grpc.ServiceError) => fail(fromGrpcError(err)));
      call.on('end', () => {
        if (!failed)
          resolve(
            options.resultsInOrder === false ? arrived : (results.filter(Boolean) as DataRequest[]),
          );
      });
      for (const req of requests) {
        order.set(req.header.requestId, order.size);
        call.write(encodeDataRequest(req, schema));
      }
      call.end();
    });
    const out: object[] = [];
    for (const a of answers) {
      for (const d of a.docs as object[]) out.push(d);
      options.onDone?.({
        requestId: a.header.requestId,
        parameters: a.parameters,
        docs: a.docs as object[],
      });
    }
    return new DocList((options.responseSchema ?? AnyDoc) as R & { static: object }, out as never);
  }

  /** Streams the documents a generator endpoint yields for one document (stream_doc). */
  async *streamDoc<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    doc: object,
    options: Omit<
      PostOptions<R>,
      'requestSize' | 'resultsInOrder' | 'continueOnError' | 'onError'
    > = {},
  ): AsyncGenerator<R['static']> {
    const request: SingleDocumentRequest<any> = {
      header: { requestId: newDocId(), execEndpoint: on },
      parameters: options.parameters ?? {},
      routes: [],
      document: doc,
    };
    const call = this.#client().makeServerStreamRequest(
      '/jina.JinaSingleDocumentRequestRPC/stream_doc',
      (r: SingleDocumentRequest<any>) =>
        asBuffer(
          jina.SingleDocumentRequestProto.encode(
            singleDocRequestToProto(r, options.requestSchema),
          ).finish(),
        ),
      (b: Buffer) => singleDocRequestFromProto(jina.SingleDocumentRequestProto.decode(b)),
      request,
      this.#metadata(),
      this.#callOptions(options.timeoutMs),
    );
    options.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    const schema = (options.responseSchema ?? AnyDoc) as R & { static: object };
    try {
      for await (const part of call as AsyncIterable<SingleDocumentRequest>) {
        throwIfError(part);
        yield new DocList(schema, [part.document as never])[0] as R['static'];
      }
    } catch (err) {
      throw fromGrpcError(err);
    } finally {
      call.cancel();
    }
  }

  /** True when a dry run passes through the whole runtime (gateway: every executor). */
  async dryRun(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const status = await this.#unary(
      '/jina.JinaGatewayDryRunRPC/dry_run',
      {},
      () => new Uint8Array(0),
      (b) => statusFromProto(jina.StatusProto.decode(b)),
      options.timeoutMs ?? 5000,
    );
    return status.code === StatusCode.SUCCESS;
  }

  /** True when the health service says SERVING for service "". Never throws. */
  async isReady(options: { timeoutMs?: number; service?: string } = {}): Promise<boolean> {
    try {
      const res = await this.#unary(
        '/grpc.health.v1.Health/Check',
        { service: options.service ?? '' },
        (m) => health.HealthCheckRequest.encode(m).finish(),
        (b) => health.HealthCheckResponse.decode(b),
        options.timeoutMs ?? 3000,
      );
      return res.status === health.HealthCheckResponse_ServingStatus.SERVING;
    } catch {
      return false;
    }
  }

  /** endpoint_discovery: endpoints and their JSON Schemas. */
  endpoints(options: { timeoutMs?: number } = {}): Promise<jina.EndpointsProto> {
    return this.#unary(
      '/jina.JinaDiscoverEndpointsRPC/endpoint_discovery',
      {},
      () => new Uint8Array(0),
      (b) => jina.EndpointsProto.decode(b),
      options.timeoutMs ?? 5000,
    );
  }

  /** _status: versions and environment of the runtime. */
  info(options: { timeoutMs?: number } = {}): Promise<jina.JinaInfoProto> {
    return this.#unary(
      '/jina.JinaInfoRPC/_status',
      {},
      () => new Uint8Array(0),
      (b) => jina.JinaInfoProto.decode(b),
      options.timeoutMs ?? 5000,
    );
  }

  close(): void {
    for (const c of this.#pool) c.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function remoteError(res: DataRequest): MarieError {
  try {
    throwIfError(res);
  } catch (err) {
    return err as MarieError;
  }
  return new MarieError(ErrorCode.Unknown, 'remote error');
}

/** `grpc://host:port`, `grpcs://host:port` or `host:port` into its parts. */
export function parseGrpcAddress(
  address: string,
  defaultPort = 54321,
): { host: string; port: number; tls: boolean } {
  const m = /^(?:(grpcs?):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(address);
  if (!m)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `not a gRPC address: ${address} (want grpc://host:port)`,
    );
  return {
    host: m[2]!.replace(/^\[|\]$/g, ''),
    port: m[3] ? Number(m[3]) : defaultPort,
    tls: m[1] === 'grpcs',
  };
}
