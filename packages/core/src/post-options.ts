import type { AnyDocType, TSchema } from '@marie/docs';
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
