import { createLogger, ErrorCode, type Logger, MarieError } from '@marie/core';
import { GrpcClient } from '@marie/transport-grpc';
import { type Polling, Routed, ShardRouter, type Upstream } from './router.js';

export interface RemoteDeploymentOptions {
  name: string;
  /**
   * Where the executor runs: one address per replica (`grpc://host:port` or `host:port`), or one
   * list of replica addresses per shard. Started by someone else: a container, another machine.
   */
  addresses: string | string[] | string[][];
  polling?: Polling;
  retries?: number;
  /** How long `start()` waits for every address to answer its health check; 60 s unless given. */
  timeoutReadyMs?: number;
  /**
   * For `grpcs://` addresses: the CA (PEM) to trust instead of the system's, and a client
   * certificate and key for executors that ask for one (mutual TLS).
   */
  tls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
  /** The executors' API key, sent as `authorization: Bearer <key>` metadata on every hop. */
  apiKey?: string;
  logger?: Logger;
}

/**
 * `grpc://host:port`, `grpcs://host:port`, `host:port`, or `dns:///host:port` (every address the
 * name resolves to, round robin: replicas behind a Kubernetes headless Service), checked.
 */
export function parseAddress(address: string, what = 'address'): GrpcClientAddress {
  const m = /^(?:(grpcs?):\/\/|(dns):\/\/\/)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(
    address.trim(),
  );
  const port = Number(m?.[4]);
  if (!m || port < 1 || port > 65535)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${what}: "${address}" is not grpc://HOST:PORT or dns:///HOST:PORT (only gRPC reaches executors)`,
    );
  return {
    host: m[3]!.replace(/^\[|\]$/g, ''),
    port,
    tls: m[1] === 'grpcs',
    allAddresses: m[2] === 'dns',
  };
}

interface GrpcClientAddress {
  host: string;
  port: number;
  tls: boolean;
  allAddresses: boolean;
}

class RemoteReplica implements Upstream {
  readonly client: GrpcClient;
  readonly label: string;
  readonly ready = true;
  inFlight = 0;

  constructor(
    label: string,
    address: GrpcClientAddress,
    options: Pick<RemoteDeploymentOptions, 'tls' | 'apiKey'>,
  ) {
    this.label = label;
    this.client = new GrpcClient({
      host: address.host,
      port: address.port,
      poolSize: 1,
      ...(address.tls ? { tls: options.tls ?? true } : {}),
      ...(address.allAddresses ? { allAddresses: true } : {}),
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    });
  }
}

/**
 * An executor this process does not start (Jina's `external: true`): the head logic of a
 * Deployment (replica choice, retries on UNAVAILABLE, ANY/ALL polling) over addresses. The
 * gateway of an exported Flow reaches its containers through these.
 */
export class RemoteDeployment extends Routed implements AsyncDisposable {
  readonly name: string;
  readonly shards: RemoteReplica[][];
  readonly #options: RemoteDeploymentOptions;

  constructor(options: RemoteDeploymentOptions) {
    super();
    this.name = options.name;
    this.#options = options;
    // One string may list replicas, comma separated (what an environment variable can hold).
    const list =
      typeof options.addresses === 'string'
        ? options.addresses
            .split(',')
            .map((a) => a.trim())
            .filter(Boolean)
        : [options.addresses].flat();
    const rows =
      list.length && list.every(Array.isArray) ? (list as string[][]) : [list as string[]];
    if (rows.length === 0 || rows.some((r) => r.length === 0))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `${this.name}: addresses must list at least one address per shard`,
      );
    this.shards = rows.map((row, s) =>
      row.map(
        (a, r) =>
          new RemoteReplica(
            `${this.name}/shard-${s}/replica-${r} (${a})`,
            parseAddress(a, `${this.name}.addresses`),
            options,
          ),
      ),
    );
    this.router = new ShardRouter(this.name, this.shards, {
      logger: options.logger ?? createLogger(`deployment ${this.name}`),
      ...(options.polling ? { polling: options.polling } : {}),
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
  }

  /** Resolves once every address answers its health check; rejects after `timeoutReadyMs`. */
  async start(): Promise<this> {
    const deadline = Date.now() + (this.#options.timeoutReadyMs ?? 60_000);
    await Promise.all(
      this.shards.flat().map(async (replica) => {
        for (;;) {
          const left = deadline - Date.now();
          if (await replica.client.isReady({ timeoutMs: Math.max(1, Math.min(left, 2000)) }))
            return;
          if (Date.now() >= deadline)
            throw new MarieError(
              ErrorCode.Unavailable,
              `${replica.label} is not ready after ${this.#options.timeoutReadyMs ?? 60_000} ms`,
            );
          await new Promise((r) => setTimeout(r, 200));
        }
      }),
    );
    return this;
  }

  /** Closes the connections; the executors keep running (they are not ours). */
  async close(): Promise<void> {
    this.router.close();
    for (const r of this.shards.flat()) r.client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
