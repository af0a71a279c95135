import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DataRequest } from './data-request.js';
import { ErrorCode, MarieError } from './errors.js';
import { NEVER_ABORTED } from './lazy-signal.js';

/**
 * What every front door (gRPC, HTTP, WebSocket, the job API) accepts at most. Each transport
 * enforces them where its wire allows it earliest, and answers in its own terms (gRPC
 * RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED, HTTP 413 / 504, WebSocket 1009 / 1011).
 */
export interface ServerLimits {
  /** Largest request (message, body, frame), bytes: 100 MiB. */
  maxRequestBytes: number;
  /** Documents in one request: 10,000. */
  maxDocsPerRequest: number;
  /** Elements of one tensor: 64 Mi (256 MB of float32). */
  maxTensorElements: number;
  /** A request still running after this is answered DEADLINE_EXCEEDED and aborted: 10 min (0: none). */
  requestTimeoutMs: number;
  /** Requests in flight on one connection (gRPC streams, WebSocket requests): 100. */
  maxConcurrentPerConnection: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxRequestBytes: 100 * 1024 * 1024,
  maxDocsPerRequest: 10_000,
  maxTensorElements: 64 * 1024 * 1024,
  requestTimeoutMs: 600_000,
  maxConcurrentPerConnection: 100,
});

/** The defaults with `given` over them, each checked; errors name the limit. */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_LIMITS, ...given };
  for (const [key, value] of Object.entries(out)) {
    const zeroOk = key === 'requestTimeoutMs';
    if (!Number.isInteger(value) || value < (zeroOk ? 0 : 1))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `limits.${key}: ${JSON.stringify(value)} is not ${zeroOk ? 'a whole number >= 0' : 'a positive whole number'}`,
        { field: `limits.${key}` },
      );
  }
  return out;
}

/**
 * Refuses a request with more documents than allowed (RESOURCE_EXHAUSTED, naming the limit).
 */
export function checkRequestLimits(
  req: DataRequest<any>,
  limits: ServerLimits,
  /** The count when the transport knows it otherwise (documents a gateway forwards unread). */
  documents?: number,
): void {
  const n = documents ?? (Array.isArray(req.docs) ? req.docs.length : 0);
  if (n > limits.maxDocsPerRequest)
    throw new MarieError(
      ErrorCode.ResourceExhausted,
      `docs: ${n} documents, more than the limit of ${limits.maxDocsPerRequest} per request (maxDocsPerRequest)`,
      { field: 'docs' },
    );
}

/** A server's certificate and key (PEM); with `clientCa`, clients must present one it signed. */
export interface TlsServerOptions {
  cert: Buffer | string;
  key: Buffer | string;
  /** Mutual TLS: the CA (PEM) that signs the client certificates this server accepts. */
  clientCa?: Buffer | string;
}

/**
 * What a TLS client trusts and presents (PEM): `ca` instead of the system's roots; `cert` and
 * `key`, both or neither, for servers that ask for a client certificate (mutual TLS).
 */
export interface TlsClientOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

/** The options as given, or an InvalidArgument naming `tls` when only one of cert and key is. */
export function checkTlsClient(tls: TlsClientOptions): TlsClientOptions {
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new MarieError(
      ErrorCode.InvalidArgument,
      'tls: a client certificate needs both cert and key',
      { field: 'tls' },
    );
  return tls;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The API keys a server accepts, compared in constant time: each key is kept only as its SHA-256
 * digest, and a presented key is checked against every one (no early exit), so neither the time
 * an answer takes nor a log line tells anything about a key.
 */
export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    const clean = keys.map((k) => k.trim()).filter(Boolean);
    if (clean.length === 0) throw new TypeError('API keys: give at least one key');
    this.#digests = clean.map(digest);
  }

  get size(): number {
    return this.#digests.length;
  }

  /**
   * Keys from `MARIE_API_KEYS` (comma or newline separated) and/or a file (one per line, `#`
   * comments); undefined when neither gives one.
   */
  static from(options: {
    env?: string | undefined;
    file?: string | undefined;
  }): ApiKeys | undefined {
    const keys: string[] = [];
    if (options.env) keys.push(...options.env.split(/[,\n]/));
    if (options.file) {
      let text: string;
      try {
        text = readFileSync(options.file, 'utf8');
      } catch (err) {
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `API keys file ${options.file}: ${(err as Error).message}`,
          { field: 'api_keys_file' },
        );
      }
      keys.push(...text.split('\n').filter((l) => !l.trim().startsWith('#')));
    }
    return keys.some((k) => k.trim()) ? new ApiKeys(keys) : undefined;
  }

  /** True when `presented` is one of the keys. */
  accepts(presented: string | undefined): boolean {
    if (!presented) return false;
    const d = digest(presented);
    let ok = false;
    for (const known of this.#digests) ok = timingSafeEqual(d, known) || ok;
    return ok;
  }

  /** The key of an `Authorization: Bearer <key>` header, or undefined. */
  static fromAuthorization(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    return m ? m[1]!.trim() : undefined;
  }
}

interface Pending {
  deadline: number;
  expire: () => void;
}

/**
 * Requests under one timeout, in the order they started: with one duration for all of them that
 * is also the order of their deadlines, so one timer, set for the oldest, serves them all (a
 * timer per request costs more than the rest of a small request's overhead together).
 */
class Deadlines {
  readonly #ms: number;
  readonly #pending = new Set<Pending>();
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  add(expire: () => void): Pending {
    const entry = { deadline: Date.now() + this.#ms, expire };
    this.#pending.add(entry);
    if (!this.#timer) this.#arm(entry.deadline);
    return entry;
  }

  delete(entry: Pending): void {
    this.#pending.delete(entry);
    // The timer stays: when it fires it finds what is still pending (an idle server's timer
    // fires once more, then stops).
  }

  #arm(deadline: number): void {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, deadline - Date.now()) + 1);
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = Date.now();
    for (const entry of this.#pending) {
      if (entry.deadline > now) {
        this.#arm(entry.deadline);
        return;
      }
      this.#pending.delete(entry);
      entry.expire();
    }
  }
}

const deadlines = new Map<number, Deadlines>();
const never = () => NEVER_ABORTED;

/**
 * Runs `work` with a deadline: after `ms` it rejects with DEADLINE_EXCEEDED (naming the limit)
 * and the signal `work` was given aborts, so a method that listens stops. `signal` is the
 * caller's (made on first use, as transports hand it); 0 runs `work` as it is.
 */
export function withRequestTimeout<T>(
  ms: number,
  signal: (() => AbortSignal) | undefined,
  work: (signal: () => AbortSignal) => Promise<T>,
): Promise<T> {
  if (!ms) return work(signal ?? never);
  let queue = deadlines.get(ms);
  if (!queue) {
    queue = new Deadlines(ms);
    deadlines.set(ms, queue);
  }
  let expired: MarieError | undefined;
  let controller: AbortController | undefined;
  let combined: AbortSignal | undefined;
  const lazy = () => {
    if (combined) return combined;
    controller = new AbortController();
    if (expired) controller.abort(expired);
    combined = signal ? AbortSignal.any([signal(), controller.signal]) : controller.signal;
    return combined;
  };
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const entry = queue.add(() => {
    expired = new MarieError(
      ErrorCode.DeadlineExceeded,
      `the request ran past ${ms} ms (requestTimeoutMs)`,
    );
    controller?.abort(expired);
    reject(expired);
  });
  const q = queue;
  work(lazy).then(
    (v) => {
      q.delete(entry);
      resolve(v);
    },
    (e: unknown) => {
      q.delete(entry);
      reject(e);
    },
  );
  return promise;
}
