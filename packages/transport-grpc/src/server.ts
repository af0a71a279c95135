import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import {
  type ApiKeys,
  ConnectionStats,
  checkRequestLimits,
  createLogger,
  type DataRequest,
  extractContext,
  type Logger,
  lazySignal,
  MarieError,
  type Processor,
  resolveLimits,
  type ServerLimits,
  StatusCode,
  type TlsServerOptions,
  traceServed,
  tracingEnabled,
  withRequestTimeout,
} from '@marie/core';
import { setTensorElementLimit } from '@marie/docs';
import {
  checkDocsBytes,
  dataRequestFromProto,
  decodeDataRequest,
  docsReader,
  encodeDataRequest,
  jina,
  PROTO_FILES,
  PROTO_ROOT,
  singleDocRequestFromProto,
  singleDocRequestToProto,
} from '@marie/proto';
import { apiKeyInterceptor } from './api-keys.js';
import { serviceError, toGrpcStatus } from './codes.js';
import { grpcServerOptions, guardSessions, tuneHttp2 } from './connection-limits.js';
import { SERVICES, serverDefinition, WireAnswer } from './definitions.js';
import { HealthService } from './health.js';
import { addInfoServices } from './info.js';
import { addSnapshotServices } from './snapshot.js';

export interface GrpcServerOptions {
  /** Interface to listen on; all of them (`0.0.0.0`) unless given. */
  host?: string;
  /** Port; 54321 unless given; 0 picks a free one. */
  port?: number;
  /**
   * Largest message accepted, in bytes (RESOURCE_EXHAUSTED beyond); `limits.maxRequestBytes`
   * (100 MiB) unless given. Answers are never capped (Python peers set no cap).
   */
  maxMessageBytes?: number;
  /** Serve TLS with this certificate chain and key (PEM); `clientCa` asks clients for theirs. */
  tls?: TlsServerOptions;
  /**
   * Every call but the health service's must carry `authorization: Bearer <key>` metadata with
   * one of these keys; UNAUTHENTICATED before its message is read otherwise.
   */
  apiKeys?: ApiKeys;
  /** Request size, documents, tensor elements, timeout, streams per connection (see ServerLimits). */
  limits?: Partial<ServerLimits>;
  logger?: Logger;
}

export const DEFAULT_PORT = 54321;

/**
 * Serves one executor over gRPC with every service of spec/wire.md: process_single_data,
 * process_data, JinaRPC/Call, stream_doc, endpoint_discovery, dry_run, _status, snapshot/restore,
 * grpc.health.v1 and server reflection.
 */
export class GrpcServer {
  readonly handler: Processor;
  readonly #server: grpc.Server;
  readonly #health: HealthService;
  #running = false;
  #unwatchHealth: (() => void) | undefined;
  readonly #options: GrpcServerOptions;
  readonly #logger: Logger;
  readonly #limits: ServerLimits;
  /** Connections open, refused and cut (`marie_connections_*` metrics). */
  readonly connections = new ConnectionStats('grpc');
  #address?: { host: string; port: number };
  #stopping?: Promise<void>;

  constructor(handler: Processor, options: GrpcServerOptions = {}) {
    this.handler = handler;
    this.#options = options;
    this.#logger = options.logger ?? createLogger('grpc');
    this.#limits = resolveLimits({
      ...options.limits,
      ...(options.maxMessageBytes !== undefined && options.maxMessageBytes > 0
        ? { maxRequestBytes: options.maxMessageBytes }
        : {}),
    });
    const keys = options.apiKeys;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': this.#limits.maxRequestBytes,
      'grpc.max_send_message_length': -1,
      // Streams per connection, idle and age (see connection-limits.ts; pings are policed there:
      // Python peers ping every ~10 s even when idle, spec/wire.md, and pass).
      ...grpcServerOptions(this.#limits),
      ...(keys ? { interceptors: [apiKeyInterceptor(keys)] } : {}),
    });
    tuneHttp2(this.#server, this.#limits);
    const names = Object.values(SERVICES).map((s) => s.fullName);
    this.#health = new HealthService(names);
    this.#addServices();
  }

  /** Binds and starts serving; health turns SERVING once the port is open. */
  async start(): Promise<{ host: string; port: number; address: string }> {
    const host = this.#options.host ?? '0.0.0.0';
    setTensorElementLimit(this.#limits.maxTensorElements);
    const tls = this.#options.tls;
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(
          tls.clientCa === undefined ? null : Buffer.from(tls.clientCa),
          [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
          tls.clientCa !== undefined,
        )
      : grpc.ServerCredentials.createInsecure();
    const target = host.includes(':') ? `[${host}]` : host;
    const port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(
        `${target}:${this.#options.port ?? DEFAULT_PORT}`,
        credentials,
        (err, bound) => (err ? reject(err) : resolve(bound)),
      );
    });
    guardSessions(this.#server, this.#limits, this.connections, this.#logger);
    this.#address = { host, port };
    this.#running = true;
    this.#health.setServing(this.handler.health?.().serving ?? true);
    this.#unwatchHealth = this.handler.onHealthChange?.((h) =>
      this.#health.setServing(this.#running && h.serving),
    );
    return { host, port, address: `grpc://${host}:${port}` };
  }

  get address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  /**
   * Graceful stop: health NOT_SERVING, no new calls, pending dynamic batches sent, in-flight calls
   * finish (cut after `graceMs`), then the executor's close() runs. Safe to call more than once.
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.#running = false;
      this.#unwatchHealth?.();
      this.#health.setServing(false);
      const drained = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
      await this.handler.flush();
      const timer = setTimeout(() => this.#server.forceShutdown(), graceMs);
      await drained;
      clearTimeout(timer);
      this.#health.close();
      this.connections.close();
      await this.handler.close();
    })();
    return this.#stopping;
  }

  /**
   * Serves a unary call: the answer, or INTERNAL if even encoding it failed (grpc-js answers
   * INTERNAL when the serializer throws: never a hung call).
   */
  #reply(work: Promise<DataRequest<any>>, callback: grpc.sendUnaryData<WireAnswer>): void {
    work.then(
      (res) => {
        const { answer, trailer } = this.#answer(res);
        callback(null, answer, trailer);
      },
      (err: unknown) => callback(this.#failure(err)),
    );
  }

  /**
   * Runs a call's work under the request timeout, inside a server span whose parent is the
   * caller's context (W3C `traceparent` in the call's metadata) when tracing is on.
   */
  #serve(
    call: { metadata: grpc.Metadata },
    method: string,
    signal: () => AbortSignal,
    work: (signal: () => AbortSignal) => Promise<DataRequest<any>>,
  ): Promise<DataRequest<any>> {
    if (!tracingEnabled()) return withRequestTimeout(this.#limits.requestTimeoutMs, signal, work);
    const timed = () => withRequestTimeout(this.#limits.requestTimeoutMs, signal, work);
    const parent = extractContext((key) => {
      const v = call.metadata.get(key)[0];
      return typeof v === 'string' ? v : undefined;
    });
    return traceServed(
      method,
      parent,
      () => ({ 'rpc.system': 'grpc', 'rpc.method': method, 'marie.runtime': this.handler.name }),
      timed,
    );
  }

  /**
   * A request from its bytes, within the limits. A gateway forwards documents unread and an
   * executor reads them when its method first uses them, so they stay serialized
   * (DataRequest.docsBytes) once their bytes are known to read cleanly (checkDocsBytes);
   * garbage throws here, and the call is answered INVALID_ARGUMENT.
   */
  #decode(bytes: Buffer): DataRequest {
    const docsBytes = this.handler.passesDocsThrough === true;
    const { req, count } = checkDocsBytes(decodeDataRequest(bytes, { docsBytes }));
    checkRequestLimits(req, this.#limits, count);
    return req;
  }

  /**
   * An answer, encoded when grpc-js serializes it; an error status gets trailing metadata
   * `is-error: true` (spec/wire.md).
   */
  #answer(res: DataRequest<any>): { answer: WireAnswer; trailer?: grpc.Metadata } {
    // The answer's documents carry their type (Processor's contract): nothing to look up.
    const answer = new WireAnswer((lend) => {
      try {
        return encodeDataRequest(res, undefined, lend);
      } catch (err) {
        this.#logger.error({ err }, 'gRPC answer could not be encoded');
        throw err;
      }
    });
    if (res.header.status?.code !== StatusCode.ERROR) return { answer };
    const trailer = new grpc.Metadata();
    trailer.set('is-error', 'true');
    return { answer, trailer };
  }

  /** The call's AbortSignal, made the first time a method asks for it (most never do). */
  #signal(call: {
    cancelled: boolean;
    once(event: 'cancelled', listener: () => void): unknown;
  }): () => AbortSignal {
    return lazySignal((abort) => {
      const cancelled = () => abort(new Error('the client cancelled the call'));
      if (call.cancelled) cancelled();
      else call.once('cancelled', cancelled);
    });
  }

  #badRequest(err: unknown): grpc.ServiceError {
    if (err instanceof MarieError && err.code !== 'invalid_argument')
      return serviceError(toGrpcStatus(err.code), err.message);
    return serviceError(grpc.status.INVALID_ARGUMENT, (err as Error).message);
  }

  /** A failure as a gRPC status: a MarieError keeps its code (a gateway's hop deadline is DEADLINE_EXCEEDED). */
  #failure(err: unknown): grpc.ServiceError {
    if (!(err instanceof MarieError)) return this.#internal(err);
    return serviceError(toGrpcStatus(err.code), err.message);
  }

  #internal(err: unknown): grpc.ServiceError {
    this.#logger.error({ err }, 'gRPC call failed');
    return serviceError(grpc.status.INTERNAL, 'internal error');
  }

  #addServices(): void {
    const s = this.#server;
    this.#addRequestServices(s);
    this.#addStreamDoc(s);
    addInfoServices(s, this.handler, (err) => this.#failure(err));
    addSnapshotServices(s, this.handler, this.#logger);
    s.addService(serverDefinition(SERVICES.health), this.#health.implementation);

    const files = PROTO_FILES.map((f) => `${PROTO_ROOT}${f}`);
    const pkg = loadSync(files, { includeDirs: [PROTO_ROOT], keepCase: true });
    new ReflectionService(pkg).addToServer(s);
  }

  /** process_single_data, process_data and JinaRPC/Call: DataRequests in, answers out. */
  #addRequestServices(s: grpc.Server): void {
    const handler = this.handler;

    s.addService(serverDefinition(SERVICES.singleData), {
      process_single_data: (
        call: grpc.ServerUnaryCall<Buffer, WireAnswer>,
        callback: grpc.sendUnaryData<WireAnswer>,
      ) => {
        let req: DataRequest;
        try {
          req = this.#decode(call.request);
        } catch (err) {
          callback(this.#badRequest(err));
          return;
        }
        this.#reply(
          this.#serve(
            call,
            'jina.JinaSingleDataRequestRPC/process_single_data',
            this.#signal(call),
            (signal) => handler.handle(req, { signal, docsBytes: true, docsReader }),
          ),
          callback,
        );
      },
    });

    s.addService(serverDefinition(SERVICES.data), {
      process_data: (
        call: grpc.ServerUnaryCall<Buffer, WireAnswer>,
        callback: grpc.sendUnaryData<WireAnswer>,
      ) => {
        let reqs: DataRequest[];
        try {
          reqs = jina.DataRequestListProto.decode(call.request).requests.map(dataRequestFromProto);
          if (reqs.length === 0) throw new Error('process_data needs at least one request');
          for (const r of reqs) checkRequestLimits(r, this.#limits);
        } catch (err) {
          callback(this.#badRequest(err));
          return;
        }
        this.#reply(
          this.#serve(call, 'jina.JinaDataRequestRPC/process_data', this.#signal(call), (signal) =>
            handler.handleMany(reqs, { signal }),
          ),
          callback,
        );
      },
    });

    s.addService(serverDefinition(SERVICES.call), {
      Call: (call: grpc.ServerDuplexStream<Buffer, WireAnswer>) => {
        const signal = this.#signal(call);
        const most = this.#limits.maxConcurrentPerConnection;
        let pending = 0;
        let ended = false;
        const maybeEnd = () => {
          if (ended && pending === 0) call.end();
        };
        call.on('data', (bytes: Buffer) => {
          let req: DataRequest;
          try {
            req = this.#decode(bytes);
          } catch (err) {
            call.emit('error', this.#badRequest(err));
            return;
          }
          // Requests in flight on this stream are bounded: reading waits until one is answered.
          if (++pending >= most) call.pause();
          this.#serve(call, 'jina.JinaRPC/Call', signal, (s) =>
            handler.handle(req, { signal: s, docsBytes: true, docsReader }),
          )
            .then((res) => {
              if (!call.destroyed) call.write(this.#answer(res).answer);
            })
            .catch((err: unknown) => call.emit('error', this.#failure(err)))
            .finally(() => {
              if (pending-- >= most) call.resume();
              maybeEnd();
            });
        });
        call.on('end', () => {
          ended = true;
          maybeEnd();
        });
      },
    });
  }

  /** stream_doc: one document in, one answer per document a generator endpoint yields. */
  #addStreamDoc(s: grpc.Server): void {
    const handler = this.handler;
    s.addService(serverDefinition(SERVICES.streamDoc), {
      stream_doc: async (call: grpc.ServerWritableStream<Buffer, Uint8Array>) => {
        let req: ReturnType<typeof singleDocRequestFromProto>;
        try {
          req = singleDocRequestFromProto(jina.SingleDocumentRequestProto.decode(call.request));
        } catch (err) {
          call.emit('error', this.#badRequest(err));
          return;
        }
        try {
          for await (const part of handler.streamDoc(req, { signal: this.#signal(call) })) {
            if (call.cancelled) break;
            call.write(
              jina.SingleDocumentRequestProto.encode(
                singleDocRequestToProto(part, part.header.status ? undefined : part.docType),
              ).finish(),
            );
          }
          call.end();
        } catch (err) {
          call.emit('error', this.#internal(err));
        }
      },
    });
  }
}
