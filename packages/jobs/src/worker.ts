import { hostname } from 'node:os';
import {
  contextFromTraceparent,
  createLogger,
  type Logger,
  type MetricFamily,
  type PostOptions,
  registerMetricSource,
  SpanKind,
  traced,
  withLogContext,
} from '@marie/core';
import type { JobWithMetadata } from 'pg-boss';
import { CANCEL_CHANNEL, type JobData, type Jobs, SUBMIT_CHANNEL } from './jobs.js';
import { Listener } from './listener.js';

/** One of a queue's pg-boss workers (a concurrency slot). */
interface Slot {
  id: string;
  busy: boolean;
}

/** What runs a job: a Client of the gateway or of an executor, a Flow, a Deployment. */
export interface JobTarget {
  post(on: string, docs: readonly object[], options: PostOptions): Promise<unknown>;
}

/** A job as its run sees it. */
export interface JobRun {
  id: string;
  queue: string;
  /** 1 on the first run. */
  attempt: number;
  data: JobData;
  /** Fires when the job is cancelled, or the worker stops. */
  signal: AbortSignal;
}

/** What a run answers, stored as the job's result. */
export interface JobOutcome {
  /** The answer's `parameters.__results__` (what the executors returned). */
  results: Record<string, unknown>;
  /** The answer's documents. */
  docs: readonly object[];
}

export interface JobWorkerOptions {
  /** Queues to take jobs from, each with its own concurrency (default 1). */
  queues: Record<string, { concurrency?: number }> | string[];
  /** Where a job runs: posted to its endpoint (`data.endpoint`, else `endpoint` here). */
  target?: JobTarget;
  /** The endpoint of jobs submitted to a named queue without one ('/default'). */
  endpoint?: string;
  /** Runs a job instead of posting it to a target. */
  run?: (job: JobRun) => Promise<JobOutcome>;
  /** How often an idle worker looks for jobs (pg-boss polling, seconds: 0.5). */
  pollingIntervalSeconds?: number;
  logger?: Logger;
}

/**
 * Takes jobs and runs them: at least once. A worker that dies mid-job leaves it active until its
 * expiry, then pg-boss hands it out again; a job's result is written by pg-boss's completion of
 * the attempt it fetched (a stale attempt completes nothing), and the job record's terminal
 * status never moves, so a job finishes once. Retries back off as the job asked, then it fails
 * with the last error. A cancelled job's run sees its signal fire (a NOTIFY from `Jobs.cancel`).
 */
export class JobWorker {
  readonly id = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly #jobs: Jobs;
  readonly #options: JobWorkerOptions;
  readonly #logger: Logger;
  readonly #running = new Map<string, AbortController>();
  readonly #slots = new Map<string, Slot[]>();
  #listener?: Listener;
  #stopped = false;
  /** `queue outcome` -> jobs; and seconds spent running, per queue. */
  readonly #finished = new Map<string, number>();
  readonly #seconds = new Map<string, number>();
  readonly #runningBy = new Map<string, number>();
  #unregister: (() => void) | undefined;

  constructor(jobs: Jobs, options: JobWorkerOptions) {
    if (!options.target && !options.run) throw new TypeError('JobWorker: give a target or run');
    this.#jobs = jobs;
    this.#options = options;
    this.#logger = options.logger ?? createLogger('jobs');
  }

  /** Jobs running on this worker now. */
  get active(): number {
    return this.#running.size;
  }

  /**
   * This worker's jobs as Prometheus families (`marie_jobs_*`): running now, finished by outcome
   * (completed, failed, retried, cancelled), and seconds spent running them, per queue.
   */
  metrics(): MetricFamily[] {
    return [
      {
        name: 'marie_jobs_running',
        help: 'Jobs this worker is running now',
        type: 'gauge',
        labelNames: ['queue'],
        samples: [...this.#slots.keys()].map((queue) => ({
          labels: { queue },
          value: this.#runningBy.get(queue) ?? 0,
        })),
      },
      {
        name: 'marie_jobs_finished_total',
        help: 'Job attempts this worker finished, by outcome',
        type: 'counter',
        labelNames: ['queue', 'outcome'],
        samples: [...this.#finished].map(([key, value]) => {
          const [queue, outcome] = key.split(' ') as [string, string];
          return { labels: { queue, outcome }, value };
        }),
      },
      {
        name: 'marie_jobs_run_seconds_total',
        help: 'Seconds this worker spent running jobs',
        type: 'counter',
        labelNames: ['queue'],
        samples: [...this.#seconds].map(([queue, value]) => ({ labels: { queue }, value })),
      },
    ];
  }

  #finish(queue: string, outcome: string, startedMs: number): void {
    const key = `${queue} ${outcome}`;
    this.#finished.set(key, (this.#finished.get(key) ?? 0) + 1);
    this.#seconds.set(queue, (this.#seconds.get(queue) ?? 0) + (Date.now() - startedMs) / 1000);
  }

  async start(): Promise<void> {
    this.#unregister ??= registerMetricSource(() => this.metrics());
    await this.#jobs.start();
    await this.#listen();
    const queues: Record<string, { concurrency?: number }> = Array.isArray(this.#options.queues)
      ? Object.fromEntries(this.#options.queues.map((q) => [q, {}]))
      : this.#options.queues;
    for (const [queue, { concurrency }] of Object.entries(queues)) {
      await this.#jobs.ensureQueue(queue);
      const options = {
        batchSize: 1,
        includeMetadata: true,
        localConcurrency: 1,
        pollingIntervalSeconds: this.#options.pollingIntervalSeconds ?? 0.5,
      } as const;
      // One pg-boss worker per slot, each knowing its id: a slot that ran a job wakes itself to
      // fetch again at once (pg-boss would wait out its polling interval after every job, which
      // caps a queue at concurrency / interval jobs/s), and a submit's NOTIFY wakes one idle slot.
      const slots: Slot[] = [];
      this.#slots.set(queue, slots);
      for (let i = 0; i < (concurrency ?? 1); i++) {
        const slot: Slot = { id: '', busy: false };
        slot.id = await this.#jobs.boss.work<JobData, JobOutcome, typeof options>(
          queue,
          options,
          async (jobs: JobWithMetadata<JobData>[]) => {
            slot.busy = true;
            try {
              const job = jobs[0]!;
              return await withLogContext({ job_id: job.id }, () =>
                traced(
                  `job ${queue}`,
                  {
                    kind: SpanKind.CONSUMER,
                    parent: contextFromTraceparent(job.data?.traceparent),
                    attributes: {
                      'marie.job_id': job.id,
                      'marie.queue': queue,
                      'marie.attempt': job.retryCount + 1,
                    },
                  },
                  () => this.#handle(queue, job),
                ),
              );
            } finally {
              slot.busy = false;
              // Read by pg-boss once this handler returns: no delay before the next fetch.
              this.#jobs.boss.notifyWorker(slot.id);
            }
          },
        );
        slots.push(slot);
      }
    }
  }

  /** A job was submitted to `queue`: one idle slot fetches now rather than at its next poll. */
  #wake(queue: string): void {
    const idle = this.#slots.get(queue)?.find((s) => !s.busy && s.id);
    if (idle) this.#jobs.boss.notifyWorker(idle.id);
  }

  /** Cancellations (a run's signal fires) and submits (an idle slot wakes), over a Listener. */
  async #listen(): Promise<void> {
    this.#listener = new Listener({
      connectionString: this.#jobs.connectionString,
      channels: [CANCEL_CHANNEL, SUBMIT_CHANNEL],
      what: 'cancellation listener',
      logger: this.#logger,
      onNotification: (channel, payload) => {
        if (channel === CANCEL_CHANNEL)
          this.#running.get(payload)?.abort(new Error(`job ${payload} was cancelled`));
        else if (channel === SUBMIT_CHANNEL) this.#wake(payload);
      },
    });
    await this.#listener.start();
  }

  /** Stops taking jobs; running ones finish (or are aborted after `timeoutMs`). */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopped = true;
    this.#unregister?.();
    this.#unregister = undefined;
    // Only this worker's slots: other JobWorkers may share the Jobs (and its pg-boss) and queue.
    await Promise.all(
      [...this.#slots].flatMap(([q, slots]) =>
        slots.map((s) => this.#jobs.boss.offWork(q, { id: s.id, wait: true }).catch(() => {})),
      ),
    ).catch(() => {});
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    while (this.#running.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.#running.values()) c.abort(new Error('the worker is stopping'));
    await this.#listener?.close();
    this.#listener = undefined;
  }

  async #handle(queue: string, job: JobWithMetadata<JobData>): Promise<JobOutcome> {
    const attempt = job.retryCount + 1;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, job.signal]);
    this.#running.set(job.id, controller);
    this.#runningBy.set(queue, (this.#runningBy.get(queue) ?? 0) + 1);
    const startedMs = Date.now();
    let outcome = 'failed';
    const records = this.#jobs.records;
    const data = job.data;
    try {
      await records?.start(job.id, {
        ...(data.endpoint ? { endpoint: data.endpoint } : {}),
        ...(data.ref_id ? { refId: data.ref_id } : {}),
        ...(data.ref_type ? { refType: data.ref_type } : {}),
        executor: this.id,
      });
      await this.#jobs.event(queue, 'started', job.id, 'INFO', { attempt }, data.ref_type);
      const result = await this.#run({ id: job.id, queue, attempt, data, signal });
      signal.throwIfAborted();
      await records?.succeed(job.id, result.results);
      await this.#jobs.event(queue, 'completed', job.id, 'OK', { attempt }, data.ref_type);
      outcome = 'completed';
      return result;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const last = attempt > job.retryLimit;
      outcome = signal.aborted ? 'cancelled' : last ? 'failed' : 'retried';
      if (last && !signal.aborted) {
        await records?.fail(job.id, e).catch(() => {});
        await this.#jobs.event(
          queue,
          'failed',
          job.id,
          'FAILED',
          { attempt, error: e.message },
          data.ref_type,
        );
      }
      this.#logger.warn(
        { job_id: job.id, queue, attempt, err: e.message },
        last ? 'job failed' : 'job attempt failed, to be retried',
      );
      // pg-boss stores what is thrown (serialized) as the job's output.
      throw e;
    } finally {
      this.#running.delete(job.id);
      this.#runningBy.set(queue, (this.#runningBy.get(queue) ?? 1) - 1);
      this.#finish(queue, outcome, startedMs);
    }
  }

  async #run(run: JobRun): Promise<JobOutcome> {
    if (this.#options.run) return this.#options.run(run);
    const { data } = run;
    const endpoint = data.endpoint ?? this.#options.endpoint ?? '/default';
    let results: Record<string, unknown> = {};
    const docs = (await this.#options.target!.post(
      endpoint,
      data.asset_key ? [{ asset_key: data.asset_key }] : [],
      {
        parameters: {
          ...data.parameters,
          job_id: run.id,
          ...(data.ref_id ? { ref_id: data.ref_id } : {}),
          ...(data.ref_type ? { ref_type: data.ref_type } : {}),
        },
        signal: run.signal,
        onDone: (r) => {
          results = {
            ...results,
            ...((r.parameters.__results__ as Record<string, unknown>) ?? {}),
          };
        },
      },
    )) as readonly object[];
    // pg-boss stores the outcome as JSON: each document's own toJSON applies there.
    return { results, docs: [...docs] };
  }
}
