import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DataRequest } from './data-request.js';
import { ErrorCode, MarieError } from './errors.js';
import { NEVER_ABORTED } from './lazy-signal.js';

/**
 * What every front door (gRPC, HTTP, WebSocket, the job API) accepts at most, and how long a
 * client may hold it. Each transport enforces them where its wire allows it earliest, and answers
 * in its own terms (gRPC RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED / GOAWAY, HTTP 408 / 413 / 431 /
 * 503 / 504, WebSocket 1008 / 1009 / 1011). `LIMITS` documents each one (flags, Flow keys).
 */
export interface ServerLimits {
  /** Largest request (message, body, frame), bytes: 100 MiB. */
  maxRequestBytes: number;
  /** Documents in one request: 10,000. */
  maxDocsPerRequest: number;
  /** Elements of one tensor: 64 Mi (256 MB of float32). */
  maxTensorElements: number;
  /**
   * A request still running (or still being received) after this is answered DEADLINE_EXCEEDED
   * (HTTP 408 while receiving) and aborted: 10 min (0: none).
   */
  requestTimeoutMs: number;
  /** Requests in flight on one connection (gRPC streams, WebSocket requests): 100. */
  maxConcurrentPerConnection: number;
  /** Connections open at once per server; beyond, refused (HTTP 503, gRPC GOAWAY): 4096. */
  maxConnections: number;
  /** HTTP/WebSocket: the whole request head (a WebSocket's upgrade too) within this: 10 s. */
  headersTimeoutMs: number;
  /** HTTP: a request body that makes no progress this long: 408, connection closed: 30 s (0: none). */
  bodyIdleTimeoutMs: number;
  /** HTTP: an idle keep-alive connection is closed after this: 72 s. */
  keepAliveTimeoutMs: number;
  /** HTTP/WebSocket: bytes of a request head: 16 KiB (431 beyond). */
  maxHeaderBytes: number;
  /** HTTP/WebSocket: header fields of a request: 100 (431 beyond). */
  maxHeaderCount: number;
  /** WebSocket: a ping this often; a peer that did not answer the previous one is closed: 30 s (0: none). */
  pingIntervalMs: number;
  /** WebSocket: answers queued for a peer that does not read, bytes; beyond, it is closed (1008): 64 MiB. */
  maxBufferedBytes: number;
  /** gRPC: a peer's pings closer together than this are strikes; the third: GOAWAY too_many_pings: 5 s (0: any rate). */
  minPingIntervalMs: number;
  /** gRPC: a connection with no call this long gets GOAWAY (clients reconnect): 5 min (0: none). */
  maxConnectionIdleMs: number;
  /** gRPC: a connection older than this (+-10%) gets GOAWAY: 0, none (long-lived streams are legitimate). */
  maxConnectionAgeMs: number;
  /** gRPC: calls on a connection past its age get this long to finish: 10 min. */
  maxConnectionAgeGraceMs: number;
  /**
   * gRPC: streams a peer may reset per second on one connection (as many again in a burst);
   * beyond, the connection is closed (HTTP/2 rapid reset, CVE-2023-44487): 1000.
   */
  maxResetsPerSecond: number;
}

/** One limit as the CLI (`--flag`), a Flow's `with:` (`yaml_key`) and `--help` name it. */
export interface LimitInfo {
  key: keyof ServerLimits;
  flag: string;
  yaml: string;
  /** What `--help` says, the default appended. */
  help: string;
  /** Whether 0 is allowed (it turns the limit off). */
  zeroOff: boolean;
}

const limit = (key: keyof ServerLimits, help: string, zeroOff = false): LimitInfo => ({
  key,
  flag: `--${key.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
  yaml: key.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
  help,
  zeroOff,
});

/** Every limit, in the order `--help` lists them. */
export const LIMITS: readonly LimitInfo[] = Object.freeze([
  limit('maxRequestBytes', 'largest request, bytes'),
  limit('maxDocsPerRequest', 'documents per request'),
  limit('maxTensorElements', 'elements of one tensor'),
  limit('requestTimeoutMs', 'ms a request may run or take to arrive (0: never cut)', true),
  limit('maxConcurrentPerConnection', 'requests in flight per connection'),
  limit('maxConnections', 'connections open at once (HTTP 503, gRPC GOAWAY beyond)'),
  limit('headersTimeoutMs', 'HTTP/WebSocket: ms to receive a request head'),
  limit('bodyIdleTimeoutMs', 'HTTP: ms a request body may make no progress (408)', true),
  limit('keepAliveTimeoutMs', 'HTTP: ms an idle keep-alive connection stays open'),
  limit('maxHeaderBytes', 'HTTP/WebSocket: bytes of a request head (431)'),
  limit('maxHeaderCount', 'HTTP/WebSocket: header fields of a request (431)'),
  limit('pingIntervalMs', 'WebSocket: ms between pings; no pong by the next: closed', true),
  limit('maxBufferedBytes', 'WebSocket: bytes queued for a peer that does not read'),
  limit('minPingIntervalMs', "gRPC: ms between a peer's pings (3rd strike: GOAWAY)", true),
  limit('maxConnectionIdleMs', 'gRPC: ms without a call before GOAWAY', true),
  limit('maxConnectionAgeMs', 'gRPC: ms a connection may live (0: forever)', true),
  limit('maxConnectionAgeGraceMs', 'gRPC: ms for calls to finish after max age'),
  limit('maxResetsPerSecond', 'gRPC: streams a peer may reset per second (rapid reset)'),
]);

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxRequestBytes: 100 * 1024 * 1024,
  maxDocsPerRequest: 10_000,
  maxTensorElements: 64 * 1024 * 1024,
  requestTimeoutMs: 600_000,
  maxConcurrentPerConnection: 100,
  maxConnections: 4096,
  headersTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  pingIntervalMs: 30_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  minPingIntervalMs: 5_000,
  maxConnectionIdleMs: 300_000,
  maxConnectionAgeMs: 0,
  maxConnectionAgeGraceMs: 600_000,
  maxResetsPerSecond: 1000,
});

/** The defaults with `given` over them, each checked; errors name the limit. */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(given)) {
    const info = LIMITS.find((l) => l.key === key);
    if (!info)
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `limits.${key}: unknown limit (${LIMITS.map((l) => l.key).join(', ')})`,
        { field: `limits.${key}` },
      );
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < (info.zeroOff ? 0 : 1))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `limits.${key}: ${JSON.stringify(value)} is not ${info.zeroOff ? 'a whole number >= 0' : 'a positive whole number'}`,
        { field: `limits.${key}` },
      );
    out[info.key] = value;
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
