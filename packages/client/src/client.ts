import {
  backoffDelay,
  createLogger,
  ErrorCode,
  MarieError,
  type PostOptions,
  retryPolicy,
  SpanKind,
  traced,
} from '@marie/core';
import type { AnyDoc, AnyDocType, DocList } from '@marie/docs';
import type {
  DagCreated,
  DagListQuery,
  DagPage,
  DagSubmission,
  DagView,
  JobCreated,
  JobListQuery,
  JobPage,
  JobSubmission,
  JobView,
} from '@marie/jobs-contract';
import { GrpcClient } from '@marie/transport-grpc';
import { HttpClient, WsClient } from '@marie/transport-http';
import { SingleBar } from 'cli-progress';
import { JobsClient } from './jobs.js';
import { sleep } from './sleep.js';

export type { PostOptions, PostResponse } from '@marie/core';

export type Protocol = 'grpc' | 'grpcs' | 'http' | 'https' | 'ws' | 'wss';

export interface ClientOptions {
  /** `grpc://host:port` (or grpcs, http, ws), or a bare host with `port` and `protocol`. */
  host?: string;
  port?: number;
  protocol?: Protocol;
  /** For grpcs, https and wss: the CA certificate (PEM) to trust instead of the system's. */
  ca?: Buffer | string;
  /** A client certificate and its key (PEM), for servers that ask for one (mutual TLS). */
  cert?: Buffer | string;
  key?: Buffer | string;
  /**
   * The gateway's (or executor's) API key: `Authorization: Bearer <key>` on HTTP and WebSocket,
   * `authorization` metadata on gRPC, and on the job API.
   */
  apiKey?: string;
  /** Connections to spread calls over. */
  poolSize?: number;
  /** WebSocket sub-protocol: `json` (default) or `bytes`. */
  subprotocol?: 'json' | 'bytes';
  /**
   * The gateway's HTTP address for the job API (`http://host:8081`): needed by the job methods
   * when `host` is a gRPC or WebSocket address; an http(s) client uses its own.
   */
  jobs?: string;
}

interface Transport {
  post(
    on: string,
    docs?: DocList<any> | readonly object[],
    options?: PostOptions<any>,
  ): Promise<DocList<any>>;
  streamDoc(on: string, doc: any, options?: any): AsyncGenerator<any>;
  dryRun(options?: { timeoutMs?: number }): Promise<boolean>;
  isReady(options?: { timeoutMs?: number }): Promise<boolean>;
  close(): void;
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
  readonly #transport: Transport;
  readonly #jobs: JobsClient | undefined;

  constructor(options: ClientOptions = {}) {
    const { protocol, host, port } = resolveAddress(options);
    this.protocol = protocol;
    this.host = host;
    this.port = port;
    const http = protocol === 'http' || protocol === 'https';
    const origin =
      options.jobs ??
      (http ? `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}` : undefined);
    if (origin !== undefined && !/^https?:\/\/./.test(origin))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `jobs: "${origin}" is not an http(s) address`,
        {
          field: 'jobs',
        },
      );
    const secure = protocol === 'grpcs' || protocol === 'https' || protocol === 'wss';
    const tlsOptions = {
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.cert !== undefined ? { cert: options.cert } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
    };
    if (!secure && Object.keys(tlsOptions).length)
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `ca, cert and key are for grpcs, https and wss; this client is ${protocol}://`,
        { field: 'ca' },
      );
    const tls = Object.keys(tlsOptions).length ? tlsOptions : true;
    const apiKey = options.apiKey !== undefined ? { apiKey: options.apiKey } : {};
    this.#jobs = origin
      ? new JobsClient(origin, {
          ...apiKey,
          ...(origin.startsWith('https:') && tls !== true ? { tls } : {}),
        })
      : undefined;
    // What every transport's client takes alike; WebSocket takes its sub-protocol, not a pool.
    const common = { host, port, ...(secure ? { tls } : {}), ...apiKey };
    const pool = options.poolSize ? { poolSize: options.poolSize } : {};
    this.#transport =
      protocol === 'grpc' || protocol === 'grpcs'
        ? new GrpcClient({ ...common, ...pool })
        : http
          ? new HttpClient({ ...common, ...pool })
          : new WsClient({ ...common, subprotocol: options.subprotocol ?? 'json' });
  }

  /**
   * Posts documents to an endpoint, `requestSize` per request, and resolves to the answer's
   * documents. With `maxAttempts` > 1 a runtime that cannot be reached (UNAVAILABLE) is tried
   * again after a growing backoff; `showProgress` draws a bar on stderr. The post is one client
   * span of a trace when tracing is on: its context goes to the runtime with every request.
   */
  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const policy = retryPolicy(options);
    return traced(
      `POST ${on}`,
      {
        kind: SpanKind.CLIENT,
        attributes: () => ({
          'marie.endpoint': on,
          'marie.docs': docs.length,
          'server.address': this.host,
          'server.port': this.port,
          'network.protocol.name': this.protocol,
        }),
      },
      async (span) => {
        const bar = options.showProgress ? progressBar(on) : undefined;
        const opts: PostOptions<R> = bar
          ? {
              ...options,
              onProgress: (p) => {
                bar.setTotal(p.total);
                bar.update(p.done);
                options.onProgress?.(p);
              },
            }
          : options;
        bar?.start(Math.max(1, Math.ceil(docs.length / (options.requestSize ?? 100))), 0);
        try {
          for (let attempt = 1; ; attempt++) {
            try {
              return (await this.#transport.post(on, docs, opts)) as DocList<R['static']>;
            } catch (err) {
              const retry =
                attempt < policy.maxAttempts &&
                err instanceof MarieError &&
                err.code === ErrorCode.Unavailable &&
                !options.signal?.aborted;
              if (!retry) throw err;
              const delay = backoffDelay(policy, attempt);
              span.addEvent('retry', { attempt, delay_ms: delay, reason: err.message });
              log().warn(
                { attempt, maxAttempts: policy.maxAttempts, delayMs: delay, reason: err.message },
                `${this.protocol}://${this.host}:${this.port} unavailable; retrying`,
              );
              bar?.update(0);
              await sleep(delay, options.signal);
            }
          }
        } finally {
          bar?.stop();
        }
      },
    );
  }

  /** The documents a generator endpoint yields for one document. */
  streamDoc<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    doc: object,
    options?: Parameters<GrpcClient['streamDoc']>[2],
  ): AsyncGenerator<R['static']> {
    return this.#transport.streamDoc(on, doc, options);
  }

  dryRun(options?: { timeoutMs?: number }): Promise<boolean> {
    return this.#transport.dryRun(options);
  }

  isReady(options?: { timeoutMs?: number }): Promise<boolean> {
    return this.#transport.isReady(options);
  }

  /** Submits a job to the gateway's job API: `{ job_id, created }` (the same `idempotency_key`, the same job). */
  submitJob(job: JobSubmission, options?: { signal?: AbortSignal }): Promise<JobCreated> {
    return this.#jobsApi().submit(job, options);
  }

  /** A job: state, attempts, times, result or error (a MarieError not_found when there is none). */
  job(id: string, options?: { signal?: AbortSignal }): Promise<JobView> {
    return this.#jobsApi().job(id, options);
  }

  /** Jobs, newest first, by state and queue, a page at a time (`after`: the previous page's `next`). */
  jobs(query?: JobListQuery): Promise<JobPage> {
    return this.#jobsApi().list(query);
  }

  /** Cancels a job; a running one's method sees its signal fire. */
  cancelJob(id: string): Promise<JobView> {
    return this.#jobsApi().cancel(id);
  }

  /** The job once it has ended, with `onProgress` told of each change of state on the way. */
  waitForJob(id: string, options?: Parameters<JobsClient['wait']>[1]): Promise<JobView> {
    return this.#jobsApi().wait(id, options);
  }

  /** Runs a plan over an asset as a DAG (202; the pre-flight's 422 names the field at fault). */
  submitDag(dag: DagSubmission, options?: { signal?: AbortSignal }): Promise<DagCreated> {
    return this.#jobsApi().submitDag(dag, options);
  }

  /** A DAG with every node's state, attempts, timings, output or error. */
  dag(id: string, options?: { signal?: AbortSignal }): Promise<DagView> {
    return this.#jobsApi().dag(id, options);
  }

  /** DAGs, newest first, by state, plan and ref_id, a page at a time. */
  dags(query?: DagListQuery): Promise<DagPage> {
    return this.#jobsApi().dags(query);
  }

  /** Cancels a DAG: pending nodes cancelled, running ones aborted. */
  cancelDag(id: string): Promise<DagView> {
    return this.#jobsApi().cancelDag(id);
  }

  /** Runs again a DAG's failed and cancelled nodes and their dependents (409 while it runs). */
  retryDag(id: string): Promise<DagView> {
    return this.#jobsApi().retryDag(id);
  }

  /** Resolves with the DAG once it ended; `onProgress` sees each change of state or nodes done. */
  waitForDag(id: string, options?: Parameters<JobsClient['waitForDag']>[1]): Promise<DagView> {
    return this.#jobsApi().waitForDag(id, options);
  }

  #jobsApi(): JobsClient {
    if (!this.#jobs)
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `the job API is served over HTTP: give the gateway's HTTP address as ClientOptions.jobs (this client is ${this.protocol}://${this.host}:${this.port})`,
        { field: 'jobs' },
      );
    return this.#jobs;
  }

  close(): void {
    this.#transport.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

let logger: ReturnType<typeof createLogger> | undefined;
const log = () => {
  logger ??= createLogger('client');
  return logger;
};

/** A progress bar on stderr (cli-progress): redrawn on a terminal, a line now and then otherwise. */
function progressBar(on: string): SingleBar {
  return new SingleBar({
    format: `${on} [{bar}] {value}/{total} requests · {duration_formatted}`,
    stream: process.stderr,
    hideCursor: process.stderr.isTTY === true,
    noTTYOutput: true,
    notTTYSchedule: 1000,
    clearOnComplete: false,
  });
}
