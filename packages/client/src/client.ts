import { ErrorCode, MarieError } from '@marie/core';
import type { AnyDoc, AnyDocType, DocList } from '@marie/docs';
import { GrpcClient, type PostOptions } from '@marie/transport-grpc';

export type { PostOptions } from '@marie/transport-grpc';

export type Protocol = 'grpc' | 'grpcs' | 'http' | 'https' | 'ws' | 'wss';

export interface ClientOptions {
  /** `grpc://host:port` (or grpcs, http, ws), or a bare host with `port` and `protocol`. */
  host?: string;
  port?: number;
  protocol?: Protocol;
  /** TLS CA certificate (PEM) for grpcs. */
  ca?: Buffer | string;
  /** Connections to spread calls over. */
  poolSize?: number;
}

const DEFAULT_PORT = 54321;

/** Where a client connects: the parts of `grpc://host:port` and the options beside it. */
export function resolveAddress(options: ClientOptions): {
  protocol: Protocol;
  host: string;
  port: number;
} {
  const raw = options.host ?? '127.0.0.1';
  const m = /^(?:([a-z]+):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(raw);
  if (!m)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `host: cannot read "${raw}" (want grpc://host:port)`,
    );
  const protocol = (m[1] ?? options.protocol ?? 'grpc') as Protocol;
  if (!['grpc', 'grpcs', 'http', 'https', 'ws', 'wss'].includes(protocol)) {
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `host: unknown protocol "${protocol}" (grpc, grpcs, http, https, ws, wss)`,
    );
  }
  const port = m[3] ? Number(m[3]) : (options.port ?? DEFAULT_PORT);
  return { protocol, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * A client of a Marie or Jina runtime (executor, head, gateway), whichever its protocol:
 * `new Client({ host: 'grpc://127.0.0.1:54321' })`.
 */
export class Client {
  readonly protocol: Protocol;
  readonly host: string;
  readonly port: number;
  readonly #grpc: GrpcClient;

  constructor(options: ClientOptions = {}) {
    const { protocol, host, port } = resolveAddress(options);
    this.protocol = protocol;
    this.host = host;
    this.port = port;
    if (protocol !== 'grpc' && protocol !== 'grpcs') {
      throw new MarieError(
        ErrorCode.Unimplemented,
        `protocol ${protocol}: this client speaks gRPC only so far`,
      );
    }
    this.#grpc = new GrpcClient({
      host,
      port,
      ...(protocol === 'grpcs' ? { tls: options.ca ? { ca: options.ca } : true } : {}),
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    });
  }

  /** Posts documents to an endpoint, `requestSize` per request, and resolves to the answer's documents. */
  post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs?: DocList<any> | readonly object[],
    options?: PostOptions<R>,
  ): Promise<DocList<R['static']>> {
    return this.#grpc.post(on, docs, options);
  }

  /** The documents a generator endpoint yields for one document. */
  streamDoc<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    doc: object,
    options?: Parameters<GrpcClient['streamDoc']>[2],
  ): AsyncGenerator<R['static']> {
    return this.#grpc.streamDoc<R>(on, doc, options as never);
  }

  dryRun(options?: { timeoutMs?: number }): Promise<boolean> {
    return this.#grpc.dryRun(options);
  }

  isReady(options?: { timeoutMs?: number }): Promise<boolean> {
    return this.#grpc.isReady(options);
  }

  close(): void {
    this.#grpc.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
