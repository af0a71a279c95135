import { type MetricFamily, registerMetricSource } from './metric-source.js';

/** Why a server refused or cut a connection (the `reason` label of `marie_connections_cut_total`). */
export type CutReason =
  /** Over `maxConnections`. */
  | 'max_connections'
  /** The request head did not arrive within `headersTimeoutMs`. */
  | 'headers_timeout'
  /** The request did not arrive within `requestTimeoutMs`. */
  | 'request_timeout'
  /** The body stood still for `bodyIdleTimeoutMs`. */
  | 'body_idle'
  /** A head over `maxHeaderBytes` or `maxHeaderCount`. */
  | 'header_too_large'
  /** A WebSocket peer that did not answer a ping. */
  | 'ping_timeout'
  /** A WebSocket peer that let more than `maxBufferedBytes` of answers queue up. */
  | 'slow_reader'
  /** A gRPC peer that pinged faster than `minPingIntervalMs`. */
  | 'too_many_pings'
  /** An HTTP/2 session ended by a protocol error (a stream-reset flood among them). */
  | 'http2_error';

/**
 * Connections of one server: how many are open, and how many it refused or cut and why. The
 * servers count; a metrics endpoint reports `marie_connections_open{protocol}` and
 * `marie_connections_cut_total{protocol,reason}` while the stats are registered.
 */
export class ConnectionStats {
  readonly protocol: string;
  #open = 0;
  readonly #cut = new Map<CutReason, number>();
  #unregister: (() => void) | undefined;

  constructor(protocol: string) {
    this.protocol = protocol;
    this.#unregister = registerMetricSource(() => this.families());
  }

  get open(): number {
    return this.#open;
  }

  /** A connection opened; returns how many are open now (itself included). */
  opened(): number {
    return ++this.#open;
  }

  closed(): void {
    this.#open--;
  }

  cut(reason: CutReason): void {
    this.#cut.set(reason, (this.#cut.get(reason) ?? 0) + 1);
  }

  /** Connections refused or cut for `reason` (all reasons when not given). */
  cuts(reason?: CutReason): number {
    if (reason) return this.#cut.get(reason) ?? 0;
    let n = 0;
    for (const v of this.#cut.values()) n += v;
    return n;
  }

  families(): MetricFamily[] {
    const protocol = this.protocol;
    return [
      {
        name: 'marie_connections_open',
        help: 'Connections open on a front door',
        type: 'gauge',
        labelNames: ['protocol'],
        samples: [{ labels: { protocol }, value: this.#open }],
      },
      {
        name: 'marie_connections_cut_total',
        help: 'Connections a front door refused or closed because a client broke a limit',
        type: 'counter',
        labelNames: ['protocol', 'reason'],
        samples: [...this.#cut].map(([reason, value]) => ({ labels: { protocol, reason }, value })),
      },
    ];
  }

  /** Stops reporting (the server stopped). */
  close(): void {
    this.#unregister?.();
    this.#unregister = undefined;
  }
}
