import {
  createDataRequest,
  type DataRequest,
  type EndpointListing,
  ErrorCode,
  type Logger,
  MarieError,
  type PostOptions,
  throwIfError,
} from '@marie/core';
import { AnyDoc, type AnyDocType, DocList } from '@marie/docs';
import type { GrpcClient } from '@marie/transport-grpc';
import { reduceAnswers } from './reduce-answers.js';

export type PollingMode = 'ANY' | 'ALL';
/** One mode for every endpoint, or per endpoint with `*` as the fallback: `{ '/index': 'ALL', '*': 'ANY' }`. */
export type Polling = PollingMode | Record<string, PollingMode>;

export interface SendOptions {
  timeoutMs?: number;
  /** Cancels the call (the caller gave up: a client gone, a job cancelled). */
  signal?: AbortSignal;
  /** The answer's documents may stay serialized (`DataRequest.docsBytes`). */
  docsBytes?: boolean;
}

/** One replica as the router sees it: a local child process or a remote address. */
export interface Upstream {
  readonly client?: GrpcClient | undefined;
  readonly ready: boolean;
  readonly label: string;
  inFlight: number;
}

export interface RouterOptions {
  polling?: Polling;
  /** Attempts on other replicas after an UNAVAILABLE answer; 3 unless given. */
  retries?: number;
  logger: Logger;
}

/** Throws InvalidArgument naming `what` unless `polling` is ANY, ALL, or a map of those. */
export function checkPolling(polling: unknown, what: string): asserts polling is Polling {
  const ok = (m: unknown) => m === 'ANY' || m === 'ALL';
  if (ok(polling)) return;
  if (typeof polling === 'object' && polling !== null && !Array.isArray(polling)) {
    const bad = Object.entries(polling).find(([, m]) => !ok(m));
    if (!bad) return;
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${what}["${bad[0]}"] must be ANY or ALL, got ${JSON.stringify(bad[1])}`,
    );
  }
  throw new MarieError(
    ErrorCode.InvalidArgument,
    `${what} must be ANY, ALL or a map of endpoint to those, got ${JSON.stringify(polling)}`,
  );
}

const RETRYABLE = new Set<string>([ErrorCode.Unavailable]);

/**
 * The head of a deployment: picks a replica per shard (least in flight, round robin on ties),
 * retries UNAVAILABLE on another replica, and polls shards ANY (one) or ALL (every shard, answers
 * reduced by document id). It runs where the requests come from: the Flow's gateway or a
 * Deployment's supervisor, so a request crosses one network hop per executor.
 */
export class ShardRouter {
  readonly name: string;
  readonly shards: readonly (readonly Upstream[])[];
  readonly #options: RouterOptions;
  #next = 0;
  #closed = false;

  constructor(name: string, shards: readonly (readonly Upstream[])[], options: RouterOptions) {
    if (options.polling !== undefined) checkPolling(options.polling, `${name}.polling`);
    this.name = name;
    this.shards = shards;
    this.#options = options;
  }

  /** The least busy ready replica of a shard, round robin among equals. */
  #pick(shard: readonly Upstream[], exclude: Set<Upstream>): Upstream | undefined {
    let best: Upstream | undefined;
    const start = this.#next++;
    for (let i = 0; i < shard.length; i++) {
      const r = shard[(start + i) % shard.length]!;
      if (!r.ready || exclude.has(r)) continue;
      if (!best || r.inFlight < best.inFlight) best = r;
    }
    return best;
  }

  /** Runs a call on the least busy ready replica of a shard, retrying UNAVAILABLE on others. */
  async #onShard(
    shard: readonly Upstream[],
    call: (client: GrpcClient) => Promise<DataRequest>,
    signal?: AbortSignal,
  ): Promise<DataRequest> {
    const tried = new Set<Upstream>();
    const retries = this.#options.retries ?? 3;
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const replica = this.#pick(shard, tried) ?? this.#pick(shard, new Set());
      if (!replica?.client) {
        lastError = new MarieError(ErrorCode.Unavailable, `${this.name}: no replica is ready`);
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
        continue;
      }
      tried.add(replica);
      replica.inFlight++;
      try {
        return await call(replica.client);
      } catch (err) {
        lastError = err;
        if (!(err instanceof MarieError) || !RETRYABLE.has(err.code) || signal?.aborted) throw err;
        this.#options.logger.warn(`${replica.label}: ${err.message}; retrying on another replica`);
      } finally {
        replica.inFlight--;
      }
    }
    throw lastError;
  }

  #pollingFor(endpoint: string | undefined): PollingMode {
    const p = this.#options.polling ?? 'ANY';
    if (typeof p === 'string') return p;
    return p[endpoint ?? '/default'] ?? p['*'] ?? 'ANY';
  }

  #timeout(options: SendOptions) {
    return {
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.signal ? { signal: options.signal } : {}),
    };
  }

  /**
   * Sends one request; an error answer resolves (its status says so), a lost call rejects. With
   * `docsBytes`, answers keep their documents serialized (a gateway forwarding them).
   */
  async send(req: DataRequest<any>, options: SendOptions = {}): Promise<DataRequest> {
    if (this.#closed) throw new MarieError(ErrorCode.Unavailable, `${this.name} is closed`);
    const timeout = {
      ...this.#timeout(options),
      ...(options.docsBytes ? { docsBytes: true } : {}),
    };
    if (this.shards.length === 1 || this.#pollingFor(req.header.execEndpoint) === 'ANY') {
      const shard = this.shards[this.#next % this.shards.length]!;
      return this.#onShard(shard, (client) => client.send(req, timeout), options.signal);
    }
    const settled = await Promise.allSettled(
      this.shards.map((shard) =>
        this.#onShard(shard, (client) => client.send(req, timeout), options.signal),
      ),
    );
    return reduceAnswers(req, settled);
  }

  /** Sends several requests joined (a Flow's `needs`): one replica gets them all as `docsMatrix`. */
  async sendMany(reqs: DataRequest<any>[], options: SendOptions = {}): Promise<DataRequest> {
    if (this.#closed) throw new MarieError(ErrorCode.Unavailable, `${this.name} is closed`);
    const shard = this.shards[this.#next % this.shards.length]!;
    const timeout = this.#timeout(options);
    return this.#onShard(shard, (client) => client.sendMany(reqs, timeout), options.signal);
  }

  /** Posts documents and resolves to the answer's documents; an error answer rejects with a MarieError. */
  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const res = await this.send(
      createDataRequest({ endpoint: on, docs, parameters: options.parameters ?? {} }),
      options,
    );
    throwIfError(res);
    // What every client's post does with `onDone`: the answer's parameters (`__results__`).
    options.onDone?.({
      requestId: res.header.requestId,
      parameters: res.parameters,
      docs: res.docs as object[],
    });
    return new DocList(
      (options.responseSchema ?? AnyDoc) as R & { static: object },
      res.docs as never,
    );
  }

  close(): void {
    this.#closed = true;
  }
}

/**
 * What Deployment and RemoteDeployment share: requests go through their ShardRouter, and the
 * endpoint listing comes from the first replica.
 */
export abstract class Routed {
  abstract readonly name: string;
  /** Set by the subclass's constructor once its replicas exist. */
  protected router!: ShardRouter;

  /** Sends one request and returns the answer (an error answer carries its status). */
  send(req: DataRequest<any>, options: SendOptions = {}): Promise<DataRequest> {
    return this.router.send(req, options);
  }

  /** Sends several requests joined (a Flow's `needs`): one replica gets them all as `docsMatrix`. */
  sendMany(reqs: DataRequest<any>[], options: SendOptions = {}): Promise<DataRequest> {
    return this.router.sendMany(reqs, options);
  }

  /** Posts documents and resolves to the answer's documents; an error answer rejects with a MarieError. */
  post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    return this.router.post(on, docs, options);
  }

  /** The executor's endpoints and schemas, as its first replica lists them. */
  async endpoints(): Promise<EndpointListing> {
    const client = this.router.shards[0]?.[0]?.client;
    if (!client) throw new MarieError(ErrorCode.Unavailable, `${this.name} is not started`);
    const listing = await client.endpoints();
    return {
      endpoints: listing.endpoints,
      writeEndpoints: listing.writeEndpoints,
      schemas: (listing.schemas ?? {}) as EndpointListing['schemas'],
    };
  }
}
