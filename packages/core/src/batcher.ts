import { DocList, isPlainObject } from '@marie/docs';
import type { Endpoint } from './endpoints.js';
import { ErrorCode, MarieError } from './errors.js';

/** What one request of a batch gets back: its slice of the documents, and results if any. */
export interface BatchOutcome {
  docs: DocList<object>;
  results?: unknown;
}

/** One batch sent to a method: what dynamic batching metrics count. */
export interface BatchEvent {
  endpoint: string;
  /** Documents in the batch. */
  size: number;
  /** Requests joined into it. */
  requests: number;
}

/** Calls the endpoint's method with a whole batch; the handler supplies it (mutex, context). */
export type RunBatch = (
  endpoint: Endpoint,
  docs: DocList<object>,
  parameters: Record<string, unknown>,
) => Promise<unknown>;

interface Pending {
  docs: DocList<object>;
  resolve: (outcome: BatchOutcome) => void;
  reject: (error: unknown) => void;
}

interface Queue {
  endpoint: Endpoint;
  parameters: Record<string, unknown>;
  items: Pending[];
  size: number;
  timer?: NodeJS.Timeout;
}

/**
 * Dynamic batching: one queue per (endpoint, canonical JSON of the parameters). A queue flushes
 * when `preferredBatchSize` documents wait or `timeoutMs` after its first request arrived.
 */
export class Batcher {
  readonly #queues = new Map<string, Queue>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #run: RunBatch;
  readonly #listeners = new Set<(event: BatchEvent) => void>();

  constructor(run: RunBatch) {
    this.#run = run;
  }

  /** Calls `fn` for every batch sent; returns its removal. */
  onBatch(fn: (event: BatchEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  /** Documents waiting per endpoint (queues of different parameters added up). */
  queued(): { endpoint: string; documents: number }[] {
    const by = new Map<string, number>();
    for (const q of this.#queues.values())
      by.set(q.endpoint.name, (by.get(q.endpoint.name) ?? 0) + q.size);
    return [...by].map(([endpoint, documents]) => ({ endpoint, documents }));
  }

  submit(
    endpoint: Endpoint,
    docs: DocList<object>,
    parameters: Record<string, unknown>,
  ): Promise<BatchOutcome> {
    const batching = endpoint.batching!;
    const key = `${endpoint.name}\u0000${canonicalJson(parameters)}`;
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = { endpoint, parameters, items: [], size: 0 };
      this.#queues.set(key, queue);
    }
    const q = queue;
    const outcome = new Promise<BatchOutcome>((resolve, reject) => {
      q.items.push({ docs, resolve, reject });
    });
    q.size += docs.length;
    if (q.size >= batching.preferredBatchSize) this.#flush(key);
    else q.timer ??= setTimeout(() => this.#flush(key), batching.timeoutMs);
    return outcome;
  }

  /** Flushes every queue and waits for every batch in flight (close() calls it). */
  async drain(): Promise<void> {
    for (const key of [...this.#queues.keys()]) this.#flush(key);
    await Promise.allSettled([...this.#inFlight]);
  }

  #flush(key: string): void {
    const queue = this.#queues.get(key);
    if (!queue) return;
    this.#queues.delete(key);
    clearTimeout(queue.timer);
    const task = this.#execute(queue).finally(() => this.#inFlight.delete(task));
    this.#inFlight.add(task);
  }

  async #execute({ endpoint, parameters, items }: Queue): Promise<void> {
    const all: object[] = [];
    for (const item of items) for (const doc of item.docs) all.push(doc);
    const batch = new DocList(endpoint.requestSchema, all, { trusted: true });
    for (const fn of this.#listeners)
      fn({ endpoint: endpoint.name, size: batch.length, requests: items.length });
    try {
      const result = await this.#run(endpoint, batch, parameters);
      let out: DocList<object> = batch;
      let results: unknown;
      if (result instanceof DocList || Array.isArray(result)) {
        out =
          result instanceof DocList && result.docType === endpoint.responseSchema
            ? result
            : new DocList(endpoint.responseSchema, result as object[]);
      } else if (isPlainObject(result)) {
        results = result;
      } else if (result !== undefined && result !== null) {
        throw new MarieError(
          ErrorCode.Internal,
          `batched method returned ${typeof result}; return a DocList, a plain object or nothing`,
        );
      }
      if (out.length !== batch.length) {
        throw new MarieError(
          ErrorCode.Internal,
          `dynamic batching: ${endpoint.name} returned ${out.length} documents for a batch of ${batch.length}; a batched method must return one document per input document`,
        );
      }
      let offset = 0;
      for (const item of items) {
        const n = item.docs.length;
        const docs = new DocList(endpoint.responseSchema, out.slice(offset, offset + n), {
          trusted: true,
        });
        offset += n;
        item.resolve(results === undefined ? { docs } : { docs, results });
      }
    } catch (err) {
      for (const item of items) item.reject(err);
    }
  }
}

/** JSON with object keys sorted at every level: equal parameters give equal keys. */
export function canonicalJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) => {
      if (!isPlainObject(v)) return v;
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = v[k];
      return sorted;
    }) ?? 'null'
  );
}
