import { type AnyDocType, DocList, type TSchema } from '@marie/docs';
import { createDataRequest, type DataRequest } from './data-request.js';
import { ErrorCode, MarieError } from './errors.js';

/** One answer to a posted request, as `onDone` hears of it. */
export interface PostResponse {
  requestId: string;
  parameters: Record<string, unknown>;
  docs: readonly object[];
}

/** What every client's `post` takes, whatever its transport. */
export interface PostOptions<R extends AnyDocType = AnyDocType> {
  parameters?: Record<string, unknown>;
  /** Documents per request; 100 unless given. */
  requestSize?: number;
  /** Regex of deployment names that should handle it (gateways route by it). */
  targetExecutor?: string;
  /** Deadline for the whole call. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Answer documents in request order (default) rather than as answers arrive. */
  resultsInOrder?: boolean;
  /** Keep going when a request fails: its documents are left out and `onError` hears of it. */
  continueOnError?: boolean;
  onError?: (error: MarieError) => void;
  /**
   * Told of every answer that succeeded, before `post` resolves (Jina's `on_done`): its
   * parameters (what executors returned is in `parameters.__results__`) and its documents.
   */
  onDone?: (response: PostResponse) => void;
  /** Document type of the answer; AnyDoc (every field kept) unless given. */
  responseSchema?: R;
  /** Document type to encode plain-object documents with (a DocList carries its own). */
  requestSchema?: TSchema;
  /**
   * Attempts of the whole post when the runtime cannot be reached (UNAVAILABLE: refused, reset,
   * draining), Jina's `max_attempts`: 1 (no retry) unless given. A retried post sends every
   * request again.
   */
  maxAttempts?: number;
  /** Wait before the first retry (Jina's `initial_backoff`, 0.5 s): 500 ms unless given. */
  initialBackoffMs?: number;
  /** Longest wait between attempts (Jina's `max_backoff`, 2 s): 2000 ms unless given. */
  maxBackoffMs?: number;
  /** Growth of the wait per attempt (Jina's `backoff_multiplier`): 1.5 unless given. */
  backoffMultiplier?: number;
  /** A progress bar on stderr, one step per answered request (Jina's `show_progress`). */
  showProgress?: boolean;
  /** Told each time a request of the post is answered: how many are done, of how many. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** The retry settings of a post, defaults applied and checked (errors name the option). */
export function retryPolicy(options: PostOptions<any>): {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
} {
  const policy = {
    maxAttempts: options.maxAttempts ?? 1,
    initialBackoffMs: options.initialBackoffMs ?? 500,
    maxBackoffMs: options.maxBackoffMs ?? 2000,
    backoffMultiplier: options.backoffMultiplier ?? 1.5,
  };
  const bad = (field: string, want: string, got: unknown) =>
    new MarieError(ErrorCode.InvalidArgument, `${field} must be ${want}, got ${got}`, { field });
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    throw bad('maxAttempts', 'a positive integer', policy.maxAttempts);
  for (const f of ['initialBackoffMs', 'maxBackoffMs'] as const)
    if (!Number.isFinite(policy[f]) || policy[f] < 0) throw bad(f, 'a number >= 0', policy[f]);
  if (!Number.isFinite(policy.backoffMultiplier) || policy.backoffMultiplier < 1)
    throw bad('backoffMultiplier', 'a number >= 1', policy.backoffMultiplier);
  return policy;
}

/** The wait before attempt `attempt + 1` (attempt 1 failed: the initial backoff), jittered ±20%. */
export function backoffDelay(
  policy: ReturnType<typeof retryPolicy>,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    policy.maxBackoffMs,
    policy.initialBackoffMs * policy.backoffMultiplier ** (attempt - 1),
  );
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Documents split into requests of `size` (at least one request, possibly empty). */
export function splitDocs(docs: readonly object[], size: number): object[][] {
  if (!Number.isInteger(size) || size < 1) {
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `requestSize must be a positive integer, got ${size}`,
    );
  }
  const out: object[][] = [];
  for (let i = 0; i < docs.length; i += size) out.push(docs.slice(i, i + size));
  return out.length ? out : [[]];
}

/**
 * The requests a client's `post` sends: `docs` cut into parts of `requestSize` (100), each a
 * request to `on` with the post's parameters and target; and the type to encode them by (a
 * DocList's own, else `requestSchema`).
 */
export function postRequests(
  on: string,
  docs: DocList<any> | readonly object[],
  options: PostOptions<any>,
): { requests: DataRequest[]; schema: TSchema | undefined } {
  const schema = docs instanceof DocList ? docs.docType : options.requestSchema;
  const requests = splitDocs(docs, options.requestSize ?? 100).map((part) =>
    createDataRequest({
      endpoint: on,
      docs: part,
      parameters: options.parameters ?? {},
      ...(options.targetExecutor ? { targetExecutor: options.targetExecutor } : {}),
    }),
  );
  return { requests, schema };
}
