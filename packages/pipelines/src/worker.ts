import { hostname } from 'node:os';
import { createLogger, ErrorCode, type Logger, MarieError, withLogContext } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { matches, valueAt } from '@marie/flow';
import { CANCEL_CHANNEL, type JobTarget, Listener } from '@marie/jobs';
import { Ajv } from 'ajv';
import type { Job } from 'pg-boss';
import {
  type DagJobData,
  type DagRow,
  type Dags,
  GROUP_TIERS,
  type NodeRow,
  READY_CHANNEL,
  type RunEnd,
} from './dags.js';
import {
  CONTROL_QUEUE,
  cappedQueue,
  mapsPages,
  type RunContext,
  referencedNodes,
  resolveRefs,
} from './expand.js';
import type { Plan, PlanNode } from './plan.js';

/** Where an executor's node runs go: a Client of it, the Flow in process, a Deployment. */
export interface DagTarget extends JobTarget {
  /** Health check and dry run: no run is fetched for this executor until they answer. */
  ready?(): Promise<boolean>;
}

export interface DagWorkerOptions {
  /**
   * The executors this worker runs nodes for (`dag.<name>` queues; `flow` for `/path` endpoints),
   * each with its slots: how many of its runs at a time (replicas times their concurrency).
   */
  executors: Record<string, { target: DagTarget; slots?: number }>;
  /** How many control runs (branch, switch, merge, noop, fan-in, checks) at a time (8; 0: none). */
  control?: number;
  /** How often an idle queue looks for runs, besides the NOTIFY that wakes it (ms, 500). */
  pollMs?: number;
  /** How often a running node's heartbeat is sent (ms, 10 000; the queue's is 30 s). */
  heartbeatMs?: number;
  logger?: Logger;
}

/** A fetched run, and when this worker took it (its node's start: no write at a start). */
type DagJob = Job<DagJobData> & { startedOn?: Date };

/** An executor as this worker sees it: its slots, its target, whether it is ready. */
interface Budget {
  name: string;
  slots: number;
  running: number;
  target?: DagTarget;
  ready: boolean;
  checking?: Promise<void>;
  loops: Loop[];
}

/** One queue of an executor (its runs, and its map pages under a concurrency cap). */
interface Loop {
  queue: string;
  budget: Budget;
  /** Fetch with pg-boss's group concurrency (the capped queue only: it costs a fetch more). */
  capped: boolean;
  pumping: boolean;
  again: boolean;
  /** Its last fetch found nothing: a freed slot tries it again only after a NOTIFY or a poll. */
  idle: boolean;
}

/**
 * Runs DAG nodes: for each executor a loop that fetches its runs only while it has a free slot and
 * the executor answered its health check and dry run (a node waits in Postgres rather than piling
 * onto a busy or restarting executor), and a loop for control runs evaluated here. Woken by the
 * NOTIFY of the transaction that made a run ready, polling as a fallback. A running node keeps its
 * pg-boss heartbeat; a worker killed mid-node leaves it to go stale, and pg-boss runs it again.
 */
export class DagWorker {
  readonly id = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly #dags: Dags;
  readonly #options: DagWorkerOptions;
  readonly #logger: Logger;
  readonly #loops = new Map<string, Loop>();
  readonly #running = new Map<string, AbortController>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #ajv = new Ajv({ allErrors: false, strict: false });
  readonly #schemas = new Map<string, ReturnType<Ajv['compile']>>();
  #listener?: Listener;
  #timer?: NodeJS.Timeout;
  #stopped = false;

  constructor(dags: Dags, options: DagWorkerOptions) {
    this.#dags = dags;
    this.#options = options;
    this.#logger = options.logger ?? createLogger('dags');
  }

  /** Node runs in progress in this worker. */
  get active(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    await this.#dags.start();
    const add = (b: Budget) => {
      for (const l of b.loops) this.#loops.set(l.queue, l);
    };
    for (const [name, e] of Object.entries(this.#options.executors)) {
      const b: Budget = {
        name,
        slots: e.slots ?? 1,
        running: 0,
        target: e.target,
        ready: !e.target.ready,
        loops: [],
      };
      for (const queue of [`dag.${name}`, cappedQueue(`dag.${name}`)]) {
        await this.#dags.jobs.ensureQueue(queue);
        b.loops.push({
          queue,
          budget: b,
          capped: queue !== `dag.${name}`,
          pumping: false,
          again: false,
          idle: false,
        });
      }
      add(b);
    }
    const control = this.#options.control ?? 8;
    if (control > 0) {
      const b: Budget = { name: 'control', slots: control, running: 0, ready: true, loops: [] };
      b.loops.push({
        queue: CONTROL_QUEUE,
        budget: b,
        capped: false,
        pumping: false,
        again: false,
        idle: false,
      });
      add(b);
    }
    await this.#listen();
    const poll = this.#options.pollMs ?? 500;
    this.#timer = setInterval(() => {
      for (const l of this.#loops.values()) this.#pump(l);
    }, poll);
    this.#timer.unref();
    for (const l of this.#loops.values()) this.#pump(l);
  }

  /** Stops fetching; running nodes finish (aborted after `timeoutMs`). */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    while (this.#inflight.size && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    for (const c of this.#running.values()) c.abort(new Error('the worker is stopping'));
    await Promise.allSettled([...this.#inflight]);
    await this.#listener?.close();
    this.#listener = undefined;
  }

  /** Ready runs (a loop fetches) and cancellations (a run's signal fires), over a Listener. */
  async #listen(): Promise<void> {
    this.#listener = new Listener({
      connectionString: this.#dags.jobs.connectionString,
      channels: [CANCEL_CHANNEL, READY_CHANNEL],
      what: 'DAG listener',
      logger: this.#logger,
      onNotification: (channel, payload) => {
        if (channel === CANCEL_CHANNEL)
          this.#running.get(payload)?.abort(new Error(`node run ${payload} was cancelled`));
        else if (channel === READY_CHANNEL) {
          const l = this.#loops.get(payload);
          if (l) {
            l.idle = false;
            this.#pump(l);
          }
        }
      },
      // Anything made ready while no one listened.
      onReconnect: () => {
        for (const l of this.#loops.values()) this.#pump(l);
      },
    });
    await this.#listener.start();
  }

  /** Readiness of an executor: its health check and dry run, retried with backoff until they pass. */
  #check(b: Budget): void {
    if (b.ready || b.checking || !b.target?.ready) return;
    b.checking = (async () => {
      let delay = 100;
      while (!this.#stopped) {
        const ok = await b.target!.ready!().catch(() => false);
        if (ok) {
          b.ready = true;
          this.#logger.info({ executor: b.name }, 'executor ready: taking its DAG runs');
          break;
        }
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 5000);
      }
    })().finally(() => {
      b.checking = undefined;
      for (const l of b.loops) this.#pump(l);
    });
  }

  /** Fetches while the executor has free slots (one fetch at a time per queue). */
  #pump(l: Loop): void {
    const b = l.budget;
    if (this.#stopped) return;
    if (!b.ready) {
      this.#check(b);
      return;
    }
    if (l.pumping) {
      l.again = true;
      return;
    }
    l.pumping = true;
    void (async () => {
      try {
        do {
          l.again = false;
          while (!this.#stopped && b.ready && b.running < b.slots) {
            const jobs = (await this.#dags.jobs.boss.fetch<DagJobData>(l.queue, {
              batchSize: b.slots - b.running,
              ...(l.capped ? { groupConcurrency: { default: 1_000_000, tiers: GROUP_TIERS } } : {}),
            })) as DagJob[];
            l.idle = jobs.length === 0;
            if (!jobs.length) break;
            for (const job of jobs) {
              b.running++;
              const p = this.#run(l, job).finally(() => {
                b.running--;
                this.#inflight.delete(p);
                // A slot is free: this queue first, then the executor's other one if it had work.
                this.#pump(l);
                for (const o of b.loops) if (o !== l && !o.idle) this.#pump(o);
              });
              this.#inflight.add(p);
            }
          }
        } while (l.again && !this.#stopped);
      } catch (err) {
        this.#logger.warn({ queue: l.queue, err: (err as Error).message }, 'DAG fetch failed');
      } finally {
        l.pumping = false;
      }
    })();
  }

  async #run(l: Loop, job: DagJob): Promise<void> {
    job.startedOn = new Date();
    let begun: Awaited<ReturnType<Dags['begin']>>;
    try {
      // A root run starts its DAG (one statement); any other starts without a write.
      begun = job.data.root ? await this.#dags.begin(l.queue, job) : await this.#dags.known(job);
    } catch (err) {
      // Postgres gone: the job stays active, its heartbeat stops, pg-boss hands it out again.
      this.#logger.warn({ job_id: job.id, err: (err as Error).message }, 'DAG run not begun');
      return;
    }
    if (!begun) {
      // Cancelled or reset while queued: settle pg-boss's job so it is not run again.
      await this.#dags.jobs.boss.cancel(l.queue, job.id).catch(() => {});
      return;
    }
    const { dag, node, attempt, plan } = begun;
    // Marie's job record per node run (an executor's run; control runs keep none), as jobs do.
    const records = l.budget.target ? this.#dags.jobs.records : undefined;
    const endpoint = plan.byId.get(node.plan_node)?.endpoint?.raw;
    await records
      ?.start(job.id, {
        ...(endpoint ? { endpoint } : {}),
        ...(dag.ref_id ? { refId: dag.ref_id } : {}),
        ...(dag.ref_type ? { refType: dag.ref_type } : {}),
        executor: this.id,
      })
      .catch((err: Error) =>
        this.#logger.warn({ job_id: job.id, err: err.message }, 'job record not started'),
      );
    const controller = new AbortController();
    this.#running.set(job.id, controller);
    const beat = setInterval(
      () =>
        void this.#dags.jobs.boss
          .touch(l.queue, { id: job.id, retryCount: job.retryCount })
          .catch(() => {}),
      this.#options.heartbeatMs ?? 10_000,
    );
    beat.unref();
    const started = Date.now();
    let result: RunEnd;
    try {
      result = await withLogContext({ job_id: job.id }, () =>
        this.#execute(l, dag, node, plan, controller.signal, job.id),
      );
      controller.signal.throwIfAborted();
    } catch (err) {
      result = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
      if (l.budget.target && MarieError.from(err).code === ErrorCode.Unavailable) {
        // The executor went away (restarting): no more of its runs until it answers again.
        l.budget.ready = false;
      }
    } finally {
      clearInterval(beat);
      this.#running.delete(job.id);
    }
    this.#dags.stats.run.sum += (Date.now() - started) / 1000;
    this.#dags.stats.run.count++;
    if (controller.signal.aborted && !this.#stopped) return; // cancelled: the cancel ended it
    if (this.#stopped && controller.signal.aborted) return; // left for pg-boss to hand out again
    // The end is committed, retrying while Postgres is away; past that, pg-boss runs it again.
    for (let i = 0, delay = 200; ; i++, delay = Math.min(delay * 2, 5000)) {
      try {
        const ended = await this.#dags.end(l.queue, job, attempt, result);
        if (ended && records) await this.#record(records, job.id, result);
        return;
      } catch (err) {
        if (i >= 12) {
          this.#logger.warn(
            { job_id: job.id, err: (err as Error).message },
            'DAG run end not committed; pg-boss will run it again',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The record's end: succeeded with the results, or failed once no retry is left. */
  async #record(
    records: NonNullable<Dags['jobs']['records']>,
    id: string,
    result: RunEnd,
  ): Promise<void> {
    try {
      if (result.ok) {
        const out = result.output as { results?: Record<string, unknown> } | null;
        await records.succeed(id, out?.results ?? {});
        return;
      }
      const state = (
        await this.#dags.pool.query(
          `SELECT state FROM ${this.#dags.t('dag_node')} WHERE job_id = $1`,
          [id],
        )
      ).rows[0]?.state;
      if (state === 'failed') await records.fail(id, result.error);
    } catch (err) {
      this.#logger.warn({ job_id: id, err: (err as Error).message }, 'job record not ended');
    }
  }

  async #execute(
    l: Loop,
    dag: DagRow,
    node: NodeRow,
    plan: Plan,
    signal: AbortSignal,
    jobId: string,
  ): Promise<RunEnd> {
    const n = plan.byId.get(node.plan_node)!;
    if (node.kind === 'fanin') return { ok: true, output: null };
    const ids = referencedNodes(n);
    const ctx = (await this.#dags.context(dag, node, plan, ids)) as RunContext;
    switch (n.kind) {
      case 'noop':
        return { ok: true, output: null };
      case 'merge':
        return { ok: true, output: { needs: n.needs } };
      case 'branch': {
        const hit = n.branch!.paths.filter((p) => matches(ctx, p.when));
        const take = n.branch!.mode === 'first_match' ? hit.slice(0, 1) : hit;
        const chosen = take.length ? [...new Set(take.flatMap((p) => p.to))] : (n.otherwise ?? []);
        return { ok: true, output: { chosen }, chosen };
      }
      case 'switch': {
        const v = valueAt(ctx, n.switch!.field).value;
        const chosen = n.switch!.cases[String(v)] ?? n.otherwise ?? [];
        return { ok: true, output: { value: v ?? null, chosen }, chosen };
      }
      case 'guardrail':
        return this.#guardrail(l, n, ctx, signal, jobId, dag, node);
      default:
        break;
    }
    // An executor node, or a map over an upstream list (its elements run here, `concurrency` at once).
    if (n.kind === 'map' && !mapsPages(n)) {
      const items = valueAt(ctx, n.map!.over).value;
      if (!Array.isArray(items))
        throw new MarieError(ErrorCode.InvalidArgument, `${n.map!.over}: not a list (map ${n.id})`);
      const out: unknown[] = new Array(items.length);
      let next = 0;
      const lanes = Array.from({ length: Math.min(n.map!.concurrency, items.length) }, async () => {
        while (next < items.length) {
          const i = next++;
          out[i] = await this.#post(l, n, { ...ctx, item: items[i] }, signal, jobId, dag, node);
        }
      });
      await Promise.all(lanes);
      return { ok: true, output: out };
    }
    return { ok: true, output: await this.#post(l, n, ctx, signal, jobId, dag, node) };
  }

  async #post(
    l: Loop,
    n: PlanNode,
    ctx: RunContext,
    signal: AbortSignal,
    jobId: string,
    dag: DagRow,
    node: NodeRow,
    extra: Record<string, unknown> = {},
  ): Promise<{ results: Record<string, unknown>; docs: unknown[] }> {
    let docs: unknown[];
    if (n.docs) {
      const d = resolveRefs(n.docs, ctx);
      if (!Array.isArray(d))
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `${n.docs}: not a list of documents (node ${n.id})`,
        );
      docs = d;
    } else if (ctx.item !== undefined) docs = isPlainObject(ctx.item) ? [ctx.item] : [];
    else if (dag.asset_key)
      docs = [
        { asset_key: dag.asset_key, ...(node.element !== null ? { pages: [node.element] } : {}) },
      ];
    else docs = [];
    const parameters = {
      ...(resolveRefs(n.parameters, ctx) as Record<string, unknown>),
      ...extra,
      ...(ctx.item !== undefined && !isPlainObject(ctx.item) ? { item: ctx.item } : {}),
      job_id: jobId,
      dag_id: dag.id,
      node_id: node.node_id,
      ...(node.element !== null ? { page: node.element } : {}),
      ...(dag.ref_id ? { ref_id: dag.ref_id } : {}),
      ...(dag.ref_type ? { ref_type: dag.ref_type } : {}),
    };
    let results: Record<string, unknown> = {};
    const answer = await l.budget.target!.post(n.endpoint!.path, docs as object[], {
      parameters,
      signal,
      onDone: (r) => {
        results = { ...results, ...((r.parameters.__results__ as Record<string, unknown>) ?? {}) };
      },
    });
    // Stored as JSON: each document's own toJSON applies.
    return JSON.parse(JSON.stringify({ results, docs: answer ?? [] }));
  }

  async #guardrail(
    l: Loop,
    n: PlanNode,
    ctx: RunContext,
    signal: AbortSignal,
    jobId: string,
    dag: DagRow,
    node: NodeRow,
  ): Promise<RunEnd> {
    const g = n.guardrail!;
    const value = valueAt(ctx, g.input).value ?? null;
    let pass: boolean;
    let why: unknown;
    if ('schema' in g.check) {
      const key = JSON.stringify(g.check.schema);
      let validate = this.#schemas.get(key);
      if (!validate) {
        validate = this.#ajv.compile(g.check.schema);
        this.#schemas.set(key, validate);
      }
      pass = validate(value) as boolean;
      why = pass ? undefined : validate.errors?.map((e) => `${e.instancePath || '/'} ${e.message}`);
    } else if ('regex' in g.check) {
      const re = new RegExp(g.check.regex, g.check.flags);
      pass = re.test(typeof value === 'string' ? value : JSON.stringify(value));
    } else {
      const out = await this.#post(l, n, ctx, signal, jobId, dag, node, { input: value });
      const verdict = findPass(out.results);
      if (verdict === undefined)
        throw new MarieError(
          ErrorCode.Internal,
          `guardrail ${n.id}: ${g.check.endpoint.raw} answered no boolean "pass" in its results`,
        );
      pass = verdict;
      why = out.results;
    }
    const chosen = pass ? g.pass : g.fail;
    return { ok: true, output: { pass, ...(why ? { why } : {}), chosen }, chosen };
  }
}

/** The first boolean `pass` in an executor's results (`{pass}` or `{executor: {pass}}`). */
function findPass(results: Record<string, unknown>): boolean | undefined {
  if (typeof results.pass === 'boolean') return results.pass;
  for (const v of Object.values(results))
    if (isPlainObject(v) && typeof v.pass === 'boolean') return v.pass;
  return undefined;
}
