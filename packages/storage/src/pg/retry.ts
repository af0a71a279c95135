import { setTimeout as sleep } from 'node:timers/promises';

// SQLSTATEs worth a second try: the server went away or is starting, a serialization failure or
// deadlock, too many connections. Everything else (syntax, constraint, permission) is permanent.
const TRANSIENT_SQLSTATE = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006', // connection_exception and friends
]);
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
// node-postgres reports a dropped connection by message only.
const TRANSIENT_MESSAGE =
  /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|terminating connection/i;

/** Whether a failure of the database may pass if the same work is tried again. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof AggregateError) return err.errors.some(isTransient);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_SQLSTATE.has(code) || TRANSIENT_ERRNO.has(code)))
    return true;
  return TRANSIENT_MESSAGE.test(err.message);
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** First backoff; doubles per attempt. */
  baseMs?: number;
  /** Backoff cap. */
  maxMs?: number;
  /** Told before each retry. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

/** Runs `op`, retrying transient failures with capped exponential backoff and full jitter. */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const base = options.baseMs ?? 50;
  const cap = options.maxMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (attempt >= options.maxAttempts || !isTransient(err) || options.signal?.aborted) throw err;
      const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
