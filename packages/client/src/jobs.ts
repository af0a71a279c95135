import { ErrorCode, MarieError, type TlsClientOptions } from '@marie/core';
import {
  DAG_ENDED,
  type DagCreated,
  type DagListQuery,
  type DagPage,
  type DagSubmission,
  type DagView,
  isTerminalState,
  type JobCreated,
  type JobListQuery,
  type JobPage,
  type JobSubmission,
  type JobView,
} from '@marie/jobs-contract';
import { fromHttpStatus } from '@marie/transport-http';
import { Agent, fetch } from 'undici';
import { sleep } from './sleep.js';

/** How `wait` and `waitForDag` follow what they wait for. */
export interface WaitOptions<T> {
  onProgress?: (now: T) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
  pollMs?: number;
}

/**
 * The gateway's job API over HTTP (fetch): submit, look up, list, cancel, and wait on a job's
 * Server-Sent Events. Errors are MarieErrors: 422 invalid_argument naming the field, 404
 * not_found, anything else unavailable or internal.
 */
export class JobsClient {
  readonly origin: string;
  readonly #headers: Record<string, string>;
  readonly #dispatcher: Agent | undefined;

  constructor(
    origin: string,
    options: {
      apiKey?: string;
      tls?: TlsClientOptions;
    } = {},
  ) {
    this.origin = origin.replace(/\/+$/, '');
    this.#headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
    this.#dispatcher = options.tls ? new Agent({ connect: { ...options.tls } }) : undefined;
  }

  /** fetch with this client's API key and TLS settings. */
  #fetch(
    url: string,
    init: {
      method?: string;
      body?: string;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ) {
    return fetch(url, {
      ...init,
      headers: { ...this.#headers, ...init.headers },
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
    });
  }

  async submit(job: JobSubmission, options: { signal?: AbortSignal } = {}): Promise<JobCreated> {
    return this.#call('POST', '/api/v1/jobs', job, options.signal);
  }

  job(id: string, options: { signal?: AbortSignal } = {}): Promise<JobView> {
    return this.#call('GET', `/api/v1/jobs/${encodeURIComponent(id)}`, undefined, options.signal);
  }

  list(query: JobListQuery = {}): Promise<JobPage> {
    const q = new URLSearchParams(
      Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    );
    return this.#call('GET', `/api/v1/jobs${q.size ? `?${q}` : ''}`);
  }

  cancel(id: string): Promise<JobView> {
    return this.#call('DELETE', `/api/v1/jobs/${encodeURIComponent(id)}`);
  }

  /**
   * Resolves with the job once it has ended (completed, failed, expired, cancelled), telling
   * `onProgress` of each change on the way; follows the job's Server-Sent Events and, should the
   * stream break, goes on by polling. Rejects on `timeoutMs` or `signal`.
   */
  wait(id: string, options: WaitOptions<JobView> = {}): Promise<JobView> {
    return this.#follow(`/api/v1/jobs/${encodeURIComponent(id)}`, `job ${id}`, options, {
      key: (j) => `${j.state}/${j.attempts}`,
      ended: (j) => isTerminalState(j.state),
      get: (signal) => this.job(id, signal ? { signal } : {}),
    });
  }

  // The DAG API (`/api/v1/dags`) -----------------------------------------------------------------

  submitDag(dag: DagSubmission, options: { signal?: AbortSignal } = {}): Promise<DagCreated> {
    return this.#call('POST', '/api/v1/dags', dag, options.signal);
  }

  dag(id: string, options: { signal?: AbortSignal } = {}): Promise<DagView> {
    return this.#call('GET', `/api/v1/dags/${encodeURIComponent(id)}`, undefined, options.signal);
  }

  dags(query: DagListQuery = {}): Promise<DagPage> {
    const q = new URLSearchParams(
      Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    );
    return this.#call('GET', `/api/v1/dags${q.size ? `?${q}` : ''}`);
  }

  cancelDag(id: string): Promise<DagView> {
    return this.#call('DELETE', `/api/v1/dags/${encodeURIComponent(id)}`);
  }

  retryDag(id: string): Promise<DagView> {
    return this.#call('POST', `/api/v1/dags/${encodeURIComponent(id)}/retry`);
  }

  /**
   * Resolves with the DAG (every node) once it has ended, telling `onProgress` of each change of
   * its state or of nodes done (the DAG without its nodes); as `wait` does for a job.
   */
  async waitForDag(id: string, options: WaitOptions<DagView> = {}): Promise<DagView> {
    const path = `/api/v1/dags/${encodeURIComponent(id)}`;
    await this.#follow(path, `DAG ${id}`, options, {
      key: (d) => `${d.state}/${d.nodes_done}`,
      ended: (d) => DAG_ENDED.has(d.state),
      get: (signal) => this.dag(id, signal ? { signal } : {}),
    });
    return this.dag(id);
  }

  /** Follows `path`/events (its `state` events), polling `get` should the stream break. */
  async #follow<T>(
    path: string,
    what: string,
    options: WaitOptions<T>,
    o: {
      key: (t: T) => string;
      ended: (t: T) => boolean;
      get: (signal?: AbortSignal) => Promise<T>;
    },
  ): Promise<T> {
    const signals = [
      options.signal,
      options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined,
    ].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length ? AbortSignal.any(signals) : undefined;
    let last: T | undefined;
    const seen = (t: T) => {
      if (!last || o.key(last) !== o.key(t)) options.onProgress?.(t);
      last = t;
    };
    try {
      const res = await this.#fetch(`${this.origin}${path}/events`, signal ? { signal } : {});
      if (res.status === 401) throw new MarieError(ErrorCode.Unauthenticated, await detailOf(res));
      if (res.status === 404) throw new MarieError(ErrorCode.NotFound, `no ${what}`);
      if (res.ok && res.body) {
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const lines = buffer.slice(0, end).split('\n');
            const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
            const data = lines
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            buffer = buffer.slice(end + 2);
            if (data && event === 'state') seen(JSON.parse(data) as T);
            end = buffer.indexOf('\n\n');
          }
        }
      }
    } catch (err) {
      if (err instanceof MarieError || signal?.aborted) throw abortedOr(err, what, signal);
      // The stream broke: polling below.
    }
    while (!last || !o.ended(last)) {
      if (signal?.aborted) throw abortedOr(undefined, what, signal);
      if (last) await sleep(options.pollMs ?? 500, signal).catch(() => {});
      if (signal?.aborted) throw abortedOr(undefined, what, signal);
      seen(await o.get(signal));
    }
    return last;
  }

  async #call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await this.#fetch(`${this.origin}${path}`, {
        method,
        ...(body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new MarieError(
        ErrorCode.Unavailable,
        `${method} ${this.origin}${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (res.ok) return json as T;
    const detail =
      typeof json.detail === 'string' ? json.detail : `${res.status} ${res.statusText}`;
    throw new MarieError(
      fromHttpStatus(res.status),
      detail,
      typeof json.field === 'string' ? { field: json.field } : {},
    );
  }
}

async function detailOf(res: { text(): Promise<string> }): Promise<string> {
  const text = await res.text();
  try {
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    if (typeof detail === 'string') return detail;
  } catch {}
  return text;
}

function abortedOr(err: unknown, what: string, signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted) return err;
  const reason = signal.reason as Error | undefined;
  return new MarieError(
    reason?.name === 'TimeoutError' ? ErrorCode.DeadlineExceeded : ErrorCode.Canceled,
    `waiting for ${what}: ${reason?.message ?? 'aborted'}`,
  );
}
