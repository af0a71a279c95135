import { closeSync, fdatasyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createLogger,
  type Logger,
  type MetricFamily,
  registerMetricSource,
  SpanKind,
  traced,
} from '@marie/core';
import { createEvent, type EventInit, type EventMessage } from './event-message.js';
import type { EventHandler } from './handlers.js';
import { Spool } from './spool.js';

/** Per handler: its queue bound and retry policy (Marie's `queue.*` and `retry.*` keys). */
export interface DeliveryOptions {
  /** `queue.maxsize`: events waiting at most (native 4096, psql 4096, rabbitmq 2048). */
  maxQueue: number;
  /** `queue.drop_if_full`: a full queue sends the new event to the dead letters at once. */
  dropIfFull: boolean;
  /** `queue.enqueue_timeout_s`: else wait this long for room, then dead-letter it. */
  enqueueTimeoutMs: number;
  /** `retry.backoff_base_s` and `retry.backoff_max_s`. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** `retry.max_attempts` per batch before its events go to the dead letters (0 = never). */
  maxAttempts: number;
  /** Events per delivery. */
  batchSize: number;
}

export interface HandlerStats {
  pending: number;
  delivered: number;
  retries: number;
  deadLettered: number;
}

export interface NotifyResult {
  /** Handlers that hold the event durably (it will be delivered at least once). */
  spooled: string[];
  /** Handlers that sent it to their dead-letter file instead (queue full). */
  deadLettered: string[];
}

export interface ToastOptions {
  /** Folder of the spools (one per handler) and the dead-letter files. */
  spoolDir: string;
  logger?: Logger;
}

class Worker {
  readonly stats: HandlerStats = { pending: 0, delivered: 0, retries: 0, deadLettered: 0 };
  readonly spool: Spool;
  #wake: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #closed = false;
  /** A batch is being delivered (or dead-lettered): its events may have left the spool already. */
  #busy = false;
  #loop: Promise<void>;
  readonly #deadFile: string;

  constructor(
    readonly handler: EventHandler,
    readonly options: DeliveryOptions,
    dir: string,
    readonly logger: Logger,
  ) {
    this.spool = new Spool(join(dir, handler.name));
    this.#deadFile = join(dir, `${handler.name}.dead-letter.jsonl`);
    this.stats.pending = this.spool.size;
    this.#loop = this.#run();
  }

  async enqueue(e: EventMessage): Promise<boolean> {
    if (this.spool.size >= this.options.maxQueue) {
      const room =
        !this.options.dropIfFull && (await this.#waitForRoom(this.options.enqueueTimeoutMs));
      if (!room) {
        this.deadLetter([e], `queue full (${this.options.maxQueue})`);
        return false;
      }
    }
    await this.spool.add([e]);
    this.stats.pending = this.spool.size;
    this.#wake?.();
    return true;
  }

  deadLetter(events: readonly EventMessage[], reason: string): void {
    mkdirSync(join(this.#deadFile, '..'), { recursive: true });
    const fd = openSync(this.#deadFile, 'a');
    try {
      const ts = new Date().toISOString();
      writeSync(
        fd,
        `${events.map((event) => JSON.stringify({ ts, handler: this.handler.name, reason, event })).join('\n')}\n`,
      );
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.stats.deadLettered += events.length;
    this.logger.error(
      { handler: this.handler.name, count: events.length, reason },
      'events dead-lettered',
    );
  }

  /** Until the spool is empty and no batch is on its way (its counts written), or `deadline`. */
  async drain(deadline: number): Promise<boolean> {
    while ((this.spool.size > 0 || this.#busy) && Date.now() < deadline) await sleep(20);
    return this.spool.size === 0 && !this.#busy;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
    await this.handler.close();
    this.spool.close();
  }

  #waitForRoom(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#roomWaiters = this.#roomWaiters.filter((w) => w !== wake);
        resolve(ok);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.#roomWaiters.push(wake);
    });
  }

  async #run(): Promise<void> {
    let attempts = 0;
    while (!this.#closed) {
      const batch = this.spool.pending(this.options.batchSize);
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      this.#busy = true;
      try {
        await this.handler.deliver(batch);
        await this.spool.ack(batch.map((e) => e.id));
        this.stats.delivered += batch.length;
        attempts = 0;
      } catch (err) {
        attempts++;
        this.stats.retries++;
        if (this.options.maxAttempts > 0 && attempts >= this.options.maxAttempts) {
          this.deadLetter(batch, `${attempts} attempts failed; last: ${(err as Error).message}`);
          await this.spool.ack(batch.map((e) => e.id));
          attempts = 0;
        } else {
          const delay = Math.min(
            this.options.backoffMaxMs,
            this.options.backoffBaseMs * 2 ** (attempts - 1),
          );
          this.logger.warn(
            { handler: this.handler.name, attempts, delayMs: delay, cause: (err as Error).message },
            'event delivery failed; retrying',
          );
          await this.#sleepUnlessClosed(delay);
        }
      }
      this.#busy = false;
      this.stats.pending = this.spool.size;
      while (this.#roomWaiters.length && this.spool.size < this.options.maxQueue)
        this.#roomWaiters.shift()!();
    }
  }

  async #sleepUnlessClosed(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.#closed && Date.now() < end) await sleep(Math.min(50, end - Date.now()));
  }
}

/**
 * Marie's toast registry, without its losses: each handler has its own durable spool (the
 * outbox) and its own worker, so one failing handler never blocks another; `notify` resolves once
 * the event is on disk for every handler (never hangs: a full queue dead-letters it after its
 * timeout); delivery is at least once, retried with capped backoff, and after `max_attempts` an
 * event goes to the handler's dead-letter file, counted, never into silence.
 */
export class Toast {
  readonly #workers: Worker[];
  readonly #logger: Logger;
  readonly #unregister: () => void;
  #notified = 0;

  constructor(
    handlers: readonly { handler: EventHandler; options?: Partial<DeliveryOptions> }[],
    options: ToastOptions,
  ) {
    this.#logger = options.logger ?? createLogger('toast');
    this.#workers = handlers.map(
      ({ handler, options: o }) =>
        new Worker(
          handler,
          { ...(DEFAULTS[handler.name] ?? DEFAULT), ...o },
          options.spoolDir,
          this.#logger,
        ),
    );
    this.#unregister = registerMetricSource(() => this.metrics());
  }

  get handlers(): string[] {
    return this.#workers.map((w) => w.handler.name);
  }

  notify(event: EventMessage | EventInit): Promise<NotifyResult> {
    const e = 'id' in event && 'timestamp' in event ? (event as EventMessage) : createEvent(event);
    this.#notified++;
    return traced(
      `event ${e.event}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: () => ({
          'marie.event': e.event,
          'marie.event_id': e.id,
          'marie.handlers': this.handlers.join(','),
        }),
      },
      async (span) => {
        const outcomes = await Promise.all(this.#workers.map((w) => w.enqueue(e)));
        const result: NotifyResult = { spooled: [], deadLettered: [] };
        for (const [i, ok] of outcomes.entries())
          result[ok ? 'spooled' : 'deadLettered'].push(this.#workers[i]!.handler.name);
        if (result.deadLettered.length)
          span.setAttribute('marie.dead_lettered', result.deadLettered.join(','));
        return result;
      },
    );
  }

  stats(): Record<string, HandlerStats> {
    return Object.fromEntries(
      this.#workers.map((w) => [w.handler.name, { ...w.stats, pending: w.spool.size }]),
    );
  }

  /**
   * Per handler, as Prometheus families (`marie_events_*`): events waiting in its spool,
   * delivered, retried deliveries, dead-lettered; and events notified in all.
   */
  metrics(): MetricFamily[] {
    const stats = Object.entries(this.stats());
    const per = (
      name: string,
      help: string,
      type: 'gauge' | 'counter',
      value: (s: HandlerStats) => number,
    ): MetricFamily => ({
      name,
      help,
      type,
      labelNames: ['handler'],
      samples: stats.map(([handler, s]) => ({ labels: { handler }, value: value(s) })),
    });
    return [
      {
        name: 'marie_events_notified_total',
        help: 'Events notified (each goes to every handler)',
        type: 'counter',
        labelNames: [],
        samples: [{ value: this.#notified }],
      },
      per(
        'marie_events_pending',
        'Events durable in the spool, not yet delivered',
        'gauge',
        (s) => s.pending,
      ),
      per('marie_events_delivered_total', 'Events delivered', 'counter', (s) => s.delivered),
      per(
        'marie_events_retries_total',
        'Deliveries retried after a failure',
        'counter',
        (s) => s.retries,
      ),
      per(
        'marie_events_dead_lettered_total',
        'Events written to the dead-letter file instead of delivered',
        'counter',
        (s) => s.deadLettered,
      ),
    ];
  }

  /** Waits until every spool is empty (or `timeoutMs` passed); true when all were delivered. */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const done = await Promise.all(this.#workers.map((w) => w.drain(deadline)));
    return done.every(Boolean);
  }

  /** Stops the workers; what is undelivered stays in the spools for the next process. */
  async close(): Promise<void> {
    this.#unregister();
    await Promise.all(this.#workers.map((w) => w.close()));
  }
}

const DEFAULT: DeliveryOptions = {
  maxQueue: 4096,
  dropIfFull: false,
  enqueueTimeoutMs: 5000,
  backoffBaseMs: 100,
  backoffMaxMs: 2000,
  maxAttempts: 50,
  batchSize: 100,
};

// Marie's per-handler queue sizes and backoffs (marie/messaging/*_handler.py).
const DEFAULTS: Record<string, DeliveryOptions> = {
  native: { ...DEFAULT, backoffBaseMs: 50, backoffMaxMs: 1000 },
  psql: { ...DEFAULT, backoffBaseMs: 100, backoffMaxMs: 2000 },
  rabbitmq: { ...DEFAULT, maxQueue: 2048, backoffBaseMs: 500, backoffMaxMs: 10_000 },
};
