import { createHash, randomUUID } from 'node:crypto';
import {
  ConfigError,
  createLogger,
  ErrorCode,
  type Logger,
  MarieError,
  type MetricFamily,
  registerMetricSource,
} from '@marie/core';
import { CANCEL_CHANNEL, isUuid, type Jobs } from '@marie/jobs';
import {
  DAG_ENDED,
  DAG_STATES,
  type DagState,
  type DagView,
  NODE_ENDED,
  parseDagSubmission,
  slaTime,
} from '@marie/jobs-contract';
import { assetPageCount, type StorageManager } from '@marie/storage';
import pg from 'pg';
import {
  CONTROL_QUEUE,
  decide,
  expand,
  MAX_MAP_CAP,
  mapsPages,
  type NodeRun,
  type RunRow,
} from './expand.js';
import { type KnownEndpoints, type Plan, type PlanNode, parsePlan } from './plan.js';
import { A, inline, J, L, U } from './sql.js';
import { dagView, nodeView, type ViewRow } from './views.js';

/** The channel that wakes DAG workers: its payload is the queue that has runs ready. */
export const READY_CHANNEL = 'marie_dag_ready';

/** pg-boss priorities: deeper levels first, then running DAGs' roots, then SLA, then priority. */
const LEVEL = 10_000;
const RUNNING = 5_000;
const SLA = 1_000;
export const GROUP_TIERS: Record<string, number> = Object.fromEntries(
  Array.from({ length: MAX_MAP_CAP }, (_, i) => [`c${i + 1}`, i + 1]),
);

export interface DagsOptions {
  /** The job service's Jobs: its pg-boss, schema and events. */
  jobs: Jobs;
  /** Plans submitted by name (`name` or `name@version`). */
  plans?: Iterable<Plan>;
  /** Where assets are read for the pre-flight, and large outputs written. */
  storage?: StorageManager;
  /** Where outputs over `inlineLimit` go: a `file://` or `s3://` prefix (content-addressed keys). */
  outputs?: string;
  /** Outputs up to this many bytes of JSON are kept in the row itself (64 KiB). */
  inlineLimit?: number;
  /** Checks inline plans' endpoints against the Flow. */
  known?: KnownEndpoints;
  /** Pool size of the DAG tables' connections (8). */
  max?: number;
  logger?: Logger;
}

export interface DagRow {
  id: string;
  plan: string;
  version: number;
  plan_doc: Record<string, unknown>;
  state: DagState;
  asset_key: string | null;
  ref_id: string | null;
  ref_type: string | null;
  parameters: Record<string, unknown>;
  pages: number | null;
  priority: number;
  soft_sla: Date | null;
  hard_sla: Date | null;
  sla_bucket: number;
  created_on: Date;
  started_on: Date | null;
  ended_on: Date | null;
  error: { node_id: string; message: string } | null;
}

export interface NodeRow extends RunRow {
  dag_id: string;
  element: number | null;
  kind: string;
  queue: string;
  job_id: string;
  level: number;
  attempts: number;
  attempt_base: number;
  runs: number;
  started_on: Date | null;
  ended_on: Date | null;
  ready_on: Date | null;
  output_attempt: number | null;
  error: { message: string } | null;
}

/** What a node run's pg-boss job carries. */
export interface DagJobData {
  dag_id: string;
  node_id: string;
  /** No parent in its insert: its start starts the DAG. */
  root?: boolean;
  /** Attempts of the node before this job (a retried DAG). */
  base?: number;
}

/** What a run's end commits: its output, or its error. */
export type RunEnd = { ok: true; output: unknown; chosen?: string[] } | { ok: false; error: Error };

/** What a transaction leaves to do once committed. */
interface After {
  events: { what: string; status: 'INFO' | 'OK' | 'FAILED'; payload?: Record<string, unknown> }[];
  dag?: DagRow;
}

/**
 * DAG runs of plans on pg-boss's flows. A submit checks the asset, expands the plan into node runs
 * (a map over pages: one per page) and inserts, in one transaction, the DAG row, its node rows and
 * pg-boss's jobs with their dependencies (`flow()`). A run's end is committed in one transaction
 * that also completes (or fails) its pg-boss job, fenced to the attempt that ran, stores its output
 * once, resolves its children at once (pg-boss's resolver, every few seconds, stays the safety net)
 * and recomputes the DAG's state: a child whose parent failed or was cancelled is never left
 * blocked, merges may go on before all their parents ended, branches see upstream outputs.
 */
export class Dags {
  readonly jobs: Jobs;
  readonly schema: string;
  readonly storage: StorageManager | undefined;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #plans = new Map<string, Plan>();
  /** What inline plans' endpoints are checked against (set once the Flow answers). */
  endpoints: KnownEndpoints | undefined;
  readonly #outputs: string | undefined;
  readonly #inlineLimit: number;
  /** Parsed plans of DAGs in flight, by DAG id (bounded). */
  readonly #planCache = new Map<string, Plan>();
  readonly #dagCache = new Map<string, DagRow>();
  readonly #sources = new WeakMap<Plan, string>();
  #started?: Promise<void>;
  #unregister?: () => void;
  /** Seconds from a run's last parent ending to its start, and node run seconds (sum, count). */
  readonly stats = { unblock: { sum: 0, count: 0 }, run: { sum: 0, count: 0 } };
  /** A queue's job table (#jobTable). */
  readonly #tables = new Map<string, string>();

  constructor(options: DagsOptions) {
    this.jobs = options.jobs;
    this.schema = options.jobs.schema;
    this.storage = options.storage;
    this.#logger = options.logger ?? createLogger('dags');
    this.endpoints = options.known;
    this.#outputs = options.outputs?.replace(/\/+$/, '');
    this.#inlineLimit = options.inlineLimit ?? 64 * 1024;
    for (const p of options.plans ?? []) this.addPlan(p);
    this.#pool = new pg.Pool({
      connectionString: options.jobs.connectionString,
      max: options.max ?? 8,
    });
    this.#pool.on('error', (err) =>
      this.#logger.warn({ err: err.message }, 'idle Postgres connection lost'),
    );
  }

  get pool(): pg.Pool {
    return this.#pool;
  }

  /** Makes a plan submittable by name (and `name@version`); the newest version answers `name`. */
  addPlan(plan: Plan): void {
    this.#plans.set(`${plan.name}@${plan.version}`, plan);
    const cur = this.#plans.get(plan.name);
    if (!cur || cur.version <= plan.version) this.#plans.set(plan.name, plan);
  }

  /** Every plan and version this Dags knows. */
  get allPlans(): Plan[] {
    return [...this.#plans].filter(([k]) => k.includes('@')).map(([, p]) => p);
  }

  /** Plans by name, newest version each. */
  get plans(): Plan[] {
    return [...this.#plans].filter(([k]) => !k.includes('@')).map(([, p]) => p);
  }

  /** The advisory lock space of this schema's DAGs (two-key form: this, the DAG's hash). */
  get #lockSpace(): number {
    let h = 0;
    for (const c of `${this.schema}.marie_dag`) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
    return h;
  }

  t(name: string): string {
    return `${this.schema}.marie_${name}`;
  }

  /**
   * The table that holds a queue's jobs (pg-boss's `job_common`, or the queue's own partition), as
   * pg-boss's own statements name it: a statement on it is planned for that table alone, where one
   * on the partitioned `job` plans every partition first (most of its cost for one row). `job`
   * until the queue was looked up (#lookUpTables, in every locked step).
   */
  #jobTable(queue: string): string {
    return this.#tables.get(queue) ?? `${this.schema}.job`;
  }

  async #lookUpTables(queues: Iterable<string>): Promise<void> {
    for (const q of new Set(queues)) {
      if (this.#tables.has(q)) continue;
      const found = await this.jobs.boss.getQueue(q);
      if (found?.table && /^[a-z_][a-z0-9_]*$/.test(found.table))
        this.#tables.set(q, `${this.schema}.${found.table}`);
    }
  }

  /** Creates the DAG tables (and pg-boss's schema, through Jobs). */
  start(): Promise<void> {
    this.#started ??= (async () => {
      await this.jobs.start();
      this.#unregister ??= registerMetricSource(() => this.metrics());
      // One process at a time (workers and gateways start together): concurrent CREATE ... IF
      // NOT EXISTS can still collide on the catalog, and the ALTER waits its turn.
      await this.#withClient((client) =>
        client
          .query(`
        BEGIN;
        SELECT pg_advisory_xact_lock(hashtext(${L(`${this.schema}.marie_dag_schema`)}));
        CREATE TABLE IF NOT EXISTS ${this.t('dag')} (
          id uuid PRIMARY KEY,
          plan text NOT NULL,
          version int NOT NULL,
          plan_doc jsonb NOT NULL,
          state text NOT NULL,
          asset_key text, ref_id text, ref_type text,
          parameters jsonb NOT NULL,
          pages int,
          priority int NOT NULL,
          soft_sla timestamptz, hard_sla timestamptz,
          sla_bucket int NOT NULL DEFAULT 0,
          idempotency_key text UNIQUE,
          created_on timestamptz NOT NULL DEFAULT now(),
          started_on timestamptz, ended_on timestamptz,
          error jsonb
        );
        CREATE INDEX IF NOT EXISTS marie_dag_created ON ${this.t('dag')} (created_on DESC, id DESC);
        CREATE INDEX IF NOT EXISTS marie_dag_live ON ${this.t('dag')} (state)
          WHERE state IN ('pending', 'running');
        CREATE TABLE IF NOT EXISTS ${this.t('dag_node')} (
          dag_id uuid NOT NULL REFERENCES ${this.t('dag')} (id) ON DELETE CASCADE,
          node_id text NOT NULL,
          plan_node text NOT NULL,
          element int,
          kind text NOT NULL,
          queue text NOT NULL,
          job_id uuid NOT NULL,
          needs text[] NOT NULL,
          level int NOT NULL,
          state text NOT NULL,
          attempts int NOT NULL DEFAULT 0,
          attempt_base int NOT NULL DEFAULT 0,
          runs int NOT NULL DEFAULT 0,
          started_on timestamptz, ended_on timestamptz, ready_on timestamptz,
          output_attempt int,
          chosen text[],
          error jsonb,
          PRIMARY KEY (dag_id, node_id)
        ) WITH (fillfactor = 50);
        CREATE INDEX IF NOT EXISTS marie_dag_node_job ON ${this.t('dag_node')} (job_id);
        -- A node row changes state four times or more: no index on what changes (state, times),
        -- and room on its page, so that each change is a HOT update (no index entries written).
        -- The sweep finds live runs through the live DAGs (marie_dag_live) instead.
        DROP INDEX IF EXISTS ${this.schema}.marie_dag_node_live;
        DO $marie$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = ${L(this.t('dag_node'))}::regclass
                         AND 'fillfactor=50' = ANY(COALESCE(reloptions, '{}'))) THEN
            ALTER TABLE ${this.t('dag_node')} SET (fillfactor = 50);
          END IF;
        END $marie$;
        CREATE TABLE IF NOT EXISTS ${this.t('dag_output')} (
          dag_id uuid NOT NULL REFERENCES ${this.t('dag')} (id) ON DELETE CASCADE,
          node_id text NOT NULL,
          attempt int NOT NULL,
          inline jsonb,
          key text,
          bytes int NOT NULL,
          created_on timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (dag_id, node_id, attempt)
        );
        COMMIT;`)
          .catch(async (err) => {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }),
      );
      await this.jobs.ensureQueue(CONTROL_QUEUE);
    })();
    this.#started.catch(() => {
      this.#started = undefined;
    });
    return this.#started;
  }

  async stop(): Promise<void> {
    this.#unregister?.();
    this.#unregister = undefined;
    await this.#pool.end();
  }

  /** The plan a submission names or carries. */
  resolvePlan(plan: string | Record<string, unknown>): Plan {
    if (typeof plan === 'string') {
      const p = this.#plans.get(plan);
      if (!p)
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `plan: no plan "${plan}" (known: ${[...this.#plans.keys()].filter((k) => !k.includes('@')).join(', ') || 'none'})`,
          { field: 'plan' },
        );
      return p;
    }
    try {
      return parsePlan(plan, {
        where: 'plan',
        ...(this.endpoints ? { known: this.endpoints } : {}),
      });
    } catch (err) {
      if (err instanceof ConfigError)
        throw new MarieError(ErrorCode.InvalidArgument, err.message, { field: 'plan' });
      throw err;
    }
  }

  /**
   * Queues a DAG run: checked (422 naming the field: the body, the plan, the asset), then written
   * with all its jobs in one transaction. The same idempotency key answers the DAG it made first.
   */
  async submit(body: unknown): Promise<{ dag_id: string; created: boolean }> {
    const s = parseDagSubmission(body);
    const plan = this.resolvePlan(s.plan);
    await this.start();
    if (s.idempotency_key) {
      const seen = await this.#pool.query(
        `SELECT id FROM ${this.t('dag')} WHERE idempotency_key = $1`,
        [s.idempotency_key],
      );
      if (seen.rows[0]) return { dag_id: seen.rows[0].id, created: false };
    }
    const pages = await this.#preflight(plan, s.asset_key);
    const now = Date.now();
    const soft = slaTime(s.soft_sla, now);
    const hard = slaTime(s.hard_sla, now);
    const runs = expand(plan, pages);
    for (const q of new Set(runs.map((r) => r.queue))) await this.jobs.ensureQueue(q);
    const id = randomUUID();
    const base = s.priority ?? 0;
    const bucket = slaBucket(soft, hard, new Date(now), new Date(now));
    const jobIds = new Map(runs.map((r) => [r.node_id, randomUUID()]));
    // One message: the DAG row and its node rows, a guard that rolls it all back when the
    // idempotency key was taken meanwhile (its DAG is answered below), pg-boss's flow() insert,
    // the NOTIFY that wakes a worker, COMMIT.
    const jobs = runs.map((r) => this.flowJobOf(plan, r, id, jobIds, base + bucket * SLA, null));
    const roots = [...new Set(runs.filter((r) => r.needs.length === 0).map((r) => r.queue))];
    const made = await this.#oneTrip(async (send) => [
      `BEGIN`,
      `WITH d AS (
         INSERT INTO ${this.t('dag')} (id, plan, version, plan_doc, state, asset_key, ref_id,
           ref_type, parameters, pages, priority, soft_sla, hard_sla, sla_bucket, idempotency_key)
         VALUES (${L(id)}, ${L(plan.name)}, ${plan.version}, ${this.#sourceOf(plan)}, 'pending',
           ${L(s.asset_key ?? null)}, ${L(s.ref_id ?? null)}, ${L(s.ref_type ?? null)},
           ${J(s.parameters ?? {})}, ${pages ?? 'NULL'}, ${base},
           ${soft ? L(soft.toISOString()) : 'NULL'}, ${hard ? L(hard.toISOString()) : 'NULL'},
           ${bucket}, ${L(s.idempotency_key ?? null)})
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)
       INSERT INTO ${this.t('dag_node')} (dag_id, node_id, plan_node, element, kind, queue, job_id,
         needs, level, state)
       SELECT d.id, x.node_id, x.plan_node, x.element, x.kind, x.queue, x.job_id, x.needs, x.level,
              CASE WHEN cardinality(x.needs) = 0 THEN 'pending' ELSE 'blocked' END
       FROM d, jsonb_to_recordset(${J(runs.map((r) => ({ ...r, job_id: jobIds.get(r.node_id) })))})
         AS x (node_id text, plan_node text, element int, kind text, queue text, job_id uuid,
               needs text[], level int)`,
      // (Without a key nothing can conflict: no guard.)
      ...(s.idempotency_key
        ? [
            `SELECT 1 / (SELECT count(*)::int FROM ${this.t('dag')} WHERE id = ${L(id)}) AS ${TAKEN_GUARD}`,
          ]
        : []),
      ...(await this.#jobsSql(jobs, send)),
      `SELECT pg_notify(${L(READY_CHANNEL)}, q) FROM unnest(${A(roots)}) AS q`,
    ]);
    if (!made) {
      const seen = await this.#pool.query(
        `SELECT id FROM ${this.t('dag')} WHERE idempotency_key = $1`,
        [s.idempotency_key],
      );
      return { dag_id: seen.rows[0].id, created: false };
    }
    this.#planCache.set(id, plan);
    await this.#event(plan.name, 'scheduled', id, 'INFO', { pages }, s.ref_type ?? null);
    return { dag_id: id, created: true };
  }

  /** The asset exists, reads, and its page count is known; else 422 naming it. */
  async #preflight(plan: Plan, assetKey: string | undefined): Promise<number | null> {
    const needsPages = plan.nodes.some(mapsPages);
    if (!assetKey) {
      if (needsPages)
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `asset_key: plan ${plan.name} maps over the asset's pages: give the asset`,
          { field: 'asset_key' },
        );
      return null;
    }
    try {
      return await assetPageCount(assetKey, this.storage ? { storage: this.storage } : {});
    } catch (err) {
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `asset_key: ${assetKey}: ${(err as Error).message.replace(`${assetKey}: `, '')}`,
        { field: 'asset_key' },
      );
    }
  }

  flowJobOf(
    plan: Plan,
    r: NodeRun,
    dagId: string,
    jobIds: Map<string, string>,
    basePriority: number,
    within: Set<string> | null,
  ) {
    const n = plan.byId.get(r.plan_node)!;
    const control = r.queue === CONTROL_QUEUE;
    const deps = r.needs.filter((p) => within === null || within.has(p));
    const base = (r as { attempts?: number }).attempts ?? 0;
    const cap = n.map?.concurrency ?? 0;
    return {
      ref: r.node_id,
      name: r.queue,
      // `root`: its start also starts the DAG (no parent in this insert); `base`: attempts its
      // node ran before this insert (a retry of the DAG), so that attempt = base + retries + 1.
      data: {
        dag_id: dagId,
        node_id: r.node_id,
        ...(deps.length === 0 ? { root: true } : {}),
        ...(base ? { base } : {}),
      },
      options: {
        id: jobIds.get(r.node_id)!,
        priority: Math.min(r.level, 200) * LEVEL + basePriority,
        retryLimit: control ? 3 : n.retry.limit,
        retryDelay: control ? 1 : n.retry.delay,
        retryBackoff: control ? false : n.retry.backoff,
        expireInSeconds: control ? 60 : n.timeout,
        ...(r.queue.endsWith('.capped')
          ? { group: { id: `${dagId}/${r.plan_node}`, tier: `c${cap}` } }
          : {}),
      },
      dependsOn: deps,
    };
  }

  /**
   * A pooled client for `fn`, released afterwards; a connection lost while it is checked out
   * (reported as an 'error' event, which the pool only hears on idle ones) is released as broken.
   */
  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost = err;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  }

  /**
   * A transaction in two messages: `fn` sends the first (BEGIN and what it reads, literal SQL) and
   * answers the statements of the second, sent with COMMIT; undefined rolls back.
   */
  async #oneTrip(
    fn: (send: (sql: string) => Promise<unknown>) => Promise<string[] | undefined>,
  ): Promise<boolean> {
    return this.#withClient(async (client) => {
      let begun = false;
      try {
        // `send` runs a statement at once (in the transaction: BEGIN is sent first when needed).
        const send = async (sql: string) => {
          if (!begun) await client.query('BEGIN');
          begun = true;
          return client.query(sql);
        };
        const last = await fn(send);
        if (!last) {
          if (begun) await client.query('ROLLBACK');
          return false;
        }
        const all = begun ? last.filter((q) => q !== 'BEGIN') : last;
        await client.query(`${all.join(';\n')};\nCOMMIT`);
        return true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        // The guard: the idempotency key was taken by another submit meanwhile.
        if ((err as { code?: string }).code === '22012') return false;
        throw err;
      }
    });
  }

  /** A plan's document as a jsonb literal, written once per plan. */
  #sourceOf(plan: Plan): string {
    let lit = this.#sources.get(plan);
    if (!lit) {
      lit = J(plan.source);
      this.#sources.set(plan, lit);
    }
    return lit;
  }

  /**
   * pg-boss's insert of node runs' jobs as SQL to send with the rest: `flow()` writes its whole
   * insert as one parameter-less statement list, taken from its `db` hook; a lone job (flow wants
   * two) is inserted there and then through `send`.
   */
  async #jobsSql(
    jobs: ReturnType<Dags['flowJobOf']>[],
    send: (sql: string) => Promise<unknown>,
  ): Promise<string[]> {
    const out: string[] = [];
    if (jobs.length >= 2) {
      await this.jobs.boss.flow(jobs, {
        db: {
          executeSql: async (text: string, values?: unknown[]) => {
            if (values?.length)
              throw new Error('pg-boss flow() sent a parameter: not one statement list');
            out.push(text);
            return { rows: [] };
          },
        },
      });
      return out;
    }
    const [j] = jobs;
    if (j)
      await this.jobs.boss.insert(j.name, [{ ...j.options, data: j.data }], {
        db: {
          executeSql: (text: string, values?: unknown[]) =>
            send(inline(text, values ?? [])) as never,
        },
      });
    return out;
  }

  /** The plan of a DAG (cached while it runs). */
  planOf(dag: Pick<DagRow, 'id' | 'plan_doc'>): Plan {
    let p = this.#planCache.get(dag.id);
    if (!p) {
      p = parsePlan(dag.plan_doc, { where: `dag ${dag.id}` });
      if (this.#planCache.size > 2000) this.#planCache.delete(this.#planCache.keys().next().value!);
      this.#planCache.set(dag.id, p);
    }
    return p;
  }

  // A run's life --------------------------------------------------------------------------------
  //
  // Each step is as few round trips as it can be: a run's start is one statement, its end three
  // (BEGIN with the DAG's lock and its node rows; pg-boss's complete or fail; every write and
  // COMMIT in one message). The writes are built here with literals (pg.escapeLiteral) so that
  // they travel as one simple-protocol message: a transaction per run's end, as before.

  /**
   * A worker fetched `job`: its node run becomes active (attempt counted) and the DAG running, in
   * one statement. Undefined when the run is no longer wanted (cancelled, reset by a retry): the
   * worker drops it.
   */
  async begin(
    queue: string,
    job: { id: string; retryCount: number; data: DagJobData },
  ): Promise<{ dag: DagRow; node: NodeRow; attempt: number; plan: Plan } | undefined> {
    const { dag_id, node_id } = job.data;
    void queue;
    // The DAG's first start also raises its other roots over new DAGs' roots. It skips a DAG row
    // locked by a cancel (that DAG is ending): waiting there could deadlock on this node's row.
    // Prepared once per connection (named): its plan (a join on the partitioned job table) is
    // cached rather than made again for every root's start.
    const r = (
      await this.#pool.query({
        name: `marie_dag_begin_${this.schema}`,
        text: `WITH n AS (
           UPDATE ${this.t('dag_node')} SET state = 'active', attempts = attempt_base + $4,
             started_on = now()
           WHERE dag_id = $1 AND node_id = $2 AND job_id = $3
             AND state IN ('pending', 'blocked', 'active')
           RETURNING *),
         first AS (
           UPDATE ${this.t('dag')} SET state = 'running', started_on = now()
           WHERE id IN (SELECT id FROM ${this.t('dag')} WHERE id = $1 AND started_on IS NULL
                        FOR UPDATE SKIP LOCKED)
             AND EXISTS (SELECT 1 FROM n)
           RETURNING id),
         bump AS (
           UPDATE ${this.schema}.job j SET priority = j.priority + ${RUNNING}
           FROM ${this.t('dag_node')} o
           WHERE EXISTS (SELECT 1 FROM first) AND o.dag_id = $1 AND o.level = 0
             AND o.state = 'pending' AND j.name = o.queue AND j.id = o.job_id
             AND j.state < 'active'
           RETURNING 1)
         SELECT (SELECT row_to_json(n) FROM n) AS node,
                (SELECT row_to_json(d) FROM ${this.t('dag')} d WHERE d.id = $1) AS dag,
                EXISTS (SELECT 1 FROM first) AS first,
                (SELECT count(*) FROM bump) AS bumped`,
        values: [dag_id, node_id, job.id, job.retryCount + 1],
      })
    ).rows[0] as { node: NodeRow | null; dag: DagRow | null; first: boolean };
    if (!r.node || !r.dag) return undefined;
    const { node, dag } = r;
    this.#remember(dag);
    const plan = this.planOf(dag);
    if (r.first) await this.#event(plan.name, 'started', dag_id, 'INFO', undefined, dag.ref_type);
    if (node.ready_on && node.started_on) {
      this.stats.unblock.sum +=
        (new Date(node.started_on).getTime() - new Date(node.ready_on).getTime()) / 1000;
      this.stats.unblock.count++;
    }
    return { dag, node, attempt: node.attempts, plan };
  }

  /**
   * A run that does not start its DAG (it had parents): no write before it runs. Its node reads as
   * active from pg-boss's job (see `get`); its row is written once, when the run ends. The DAG's
   * fields come from this process's cache (they never change) or one read.
   */
  async known(job: {
    id: string;
    retryCount: number;
    data: DagJobData;
  }): Promise<{ dag: DagRow; node: NodeRow; attempt: number; plan: Plan } | undefined> {
    const { dag_id, node_id } = job.data;
    let dag = this.#dagCache.get(dag_id);
    if (!dag) {
      dag = (await this.#pool.query(`SELECT * FROM ${this.t('dag')} WHERE id = $1`, [dag_id]))
        .rows[0] as DagRow | undefined;
      if (!dag) return undefined;
      this.#remember(dag);
    }
    const plan = this.planOf(dag);
    const m = /^(.*)\[(\d+)\]$/.exec(node_id);
    const planNode = m ? m[1]! : node_id;
    const p = plan.byId.get(planNode);
    if (!p) return undefined;
    const attempt = (job.data.base ?? 0) + job.retryCount + 1;
    const node = {
      dag_id,
      node_id,
      plan_node: planNode,
      element: m ? Number(m[2]) : null,
      kind: mapsPages(p) && !m ? 'fanin' : p.kind,
      job_id: job.id,
      state: 'active',
      attempts: attempt,
    } as NodeRow;
    return { dag, node, attempt, plan };
  }

  /** A DAG whose run is ending, as this process knows it (its fields but state: it is live). */
  #liveDag(id: string): DagRow | undefined {
    const d = this.#dagCache.get(id);
    return d && !DAG_ENDED.has(d.state) ? { ...d, state: 'running' } : undefined;
  }

  /** The DAG rows of runs in flight here (their fields never change), bounded. */

  #remember(dag: DagRow): void {
    if (this.#dagCache.size > 2000) this.#dagCache.delete(this.#dagCache.keys().next().value!);
    this.#dagCache.set(dag.id, dag);
  }

  /** What a run reads: the DAG's fields and input, and the outputs its references name. */
  async context(dag: DagRow, node: NodeRow, plan: Plan, ids: Set<string>) {
    const nodes: Record<string, { output?: unknown; error?: unknown; state?: string }> = {};
    if (ids.size) {
      const rows = (
        await this.#pool.query(
          `SELECT n.node_id, n.plan_node, n.element, n.state, n.error, o.inline, o.key
           FROM ${this.t('dag_node')} n
           LEFT JOIN ${this.t('dag_output')} o ON o.dag_id = n.dag_id AND o.node_id = n.node_id
             AND o.attempt = n.output_attempt
           WHERE n.dag_id = $1 AND n.plan_node = ANY($2::text[])
           ORDER BY n.element NULLS FIRST`,
          [dag.id, [...ids]],
        )
      ).rows as {
        node_id: string;
        plan_node: string;
        element: number | null;
        state: string;
        error: unknown;
        inline: unknown;
        key: string | null;
      }[];
      for (const id of ids) {
        const p = plan.byId.get(id)!;
        const own = rows.filter((r) => r.plan_node === id);
        if (mapsPages(p)) {
          // A page of a map reads the same page of the map it needs; others read every page.
          const same = node.element !== null && mapsPages(plan.byId.get(node.plan_node)!);
          const pick = same
            ? own.filter((r) => r.element === node.element)
            : own.filter((r) => r.element !== null);
          const outs = await Promise.all(pick.map((r) => this.#load(r)));
          const fan = own.find((r) => r.element === null);
          nodes[id] = same
            ? { output: outs[0], state: pick[0]?.state, error: pick[0]?.error ?? undefined }
            : {
                output: outs,
                state: fan?.state ?? 'blocked',
                error: pick
                  .filter((r) => r.error)
                  .map((r) => ({ node_id: r.node_id, ...(r.error as object) })),
              };
        } else {
          const r = own[0];
          if (r)
            nodes[id] = {
              output: await this.#load(r),
              state: r.state,
              ...(r.error ? { error: r.error } : {}),
            };
        }
      }
    }
    return {
      dag_id: dag.id,
      asset_key: dag.asset_key,
      ref_id: dag.ref_id,
      ref_type: dag.ref_type,
      pages: dag.pages,
      input: dag.parameters,
      nodes,
      ...(node.element !== null ? { page: node.element } : {}),
    };
  }

  async #load(r: { inline: unknown; key: string | null }): Promise<unknown> {
    if (r.key) {
      if (!this.storage) throw new Error(`output ${r.key}: no storage to read it from`);
      return JSON.parse((await this.storage.read(r.key)).toString('utf8'));
    }
    return r.inline ?? null;
  }

  /**
   * Ends a run: one transaction completes (or fails) its pg-boss job for the attempt that ran,
   * writes its output once, resolves its children and the DAG. False when the attempt is stale
   * (retried after its heartbeat stopped, cancelled, reset): nothing was written.
   */
  async end(
    queue: string,
    job: { id: string; retryCount: number; data: DagJobData; startedOn?: Date | null },
    attempt: number,
    result: RunEnd,
  ): Promise<boolean> {
    const { dag_id, node_id } = job.data;
    // A large output goes to the object store first, under its content's hash: written twice by a
    // stale attempt, it is the same object.
    let inlined: string | null = null;
    let key: string | null = null;
    let bytes = 0;
    if (result.ok) {
      const json = JSON.stringify(result.output ?? null);
      bytes = Buffer.byteLength(json);
      if (bytes > this.#inlineLimit && this.#outputs && this.storage) {
        key = `${this.#outputs}/${createHash('sha256').update(json).digest('hex')}.json`;
        await this.storage.write(key, Buffer.from(json));
      } else inlined = json;
    }
    const after: After = { events: [] };
    const fence = { id: job.id, retryCount: job.retryCount };
    // A success: pg-boss's complete, fenced to this attempt, runs first in the locked transaction
    // (its statement taken from its `db` hook); when it completed nothing (a stale attempt), all
    // is rolled back.
    let completion: string | undefined;
    if (result.ok)
      await this.jobs.boss.complete(
        queue,
        fence,
        { dag_id, node_id, attempt },
        {
          db: {
            executeSql: async (text: string, values?: unknown[]) => {
              completion = inline(text, values ?? []);
              return { rows: [{ count: '1', ids: [job.id] }] };
            },
          },
        },
      );
    const ok = await this.#locked(
      dag_id,
      async (client, dag, rows, w, completed) => {
        after.dag = dag; // its plan and ref_type name the events sent after COMMIT
        const node = rows.get(node_id);
        // The run of this job, not ended (a cancel or a retry's reset changed it otherwise);
        // pg-boss's fence below refuses a stale attempt of the same job.
        if (
          !node ||
          node.job_id !== job.id ||
          (node.state !== 'active' && node.state !== 'pending')
        )
          return false;
        const began = job.startedOn ? L(new Date(job.startedOn).toISOString()) : 'now()';
        // Unblock latency: from the end that made it runnable to its start (pg-boss's started_on).
        if (node.ready_on && job.startedOn && node.attempts === 0) {
          this.stats.unblock.sum +=
            (new Date(job.startedOn).getTime() - new Date(node.ready_on).getTime()) / 1000;
          this.stats.unblock.count++;
        }
        const db = { executeSql: (text: string, values?: unknown[]) => client.query(text, values) };
        const plan = this.planOf(dag);
        const id = L(dag_id);
        if (result.ok) {
          if (Number(completed[0]?.count) !== 1) return false;
          // The output and the run's row in one statement (each statement costs its parse and plan).
          w.push(
            `WITH o AS (
               INSERT INTO ${this.t('dag_output')} (dag_id, node_id, attempt, inline, key, bytes)
               VALUES (${id}, ${L(node_id)}, ${attempt}, ${inlined === null ? 'NULL' : `${L(inlined)}::jsonb`},
                       ${L(key)}, ${bytes}) ON CONFLICT DO NOTHING)
             UPDATE ${this.t('dag_node')} SET state = 'completed', ended_on = now(), runs = runs + 1,
               attempts = ${attempt}, started_on = COALESCE(started_on, ${began}),
               output_attempt = ${attempt}, chosen = ${result.chosen ? A(result.chosen) : 'NULL'}, error = NULL
             WHERE dag_id = ${id} AND node_id = ${L(node_id)}`,
          );
          // Its children are resolved below. pg-boss's resolver still visits it later (its
          // `blocking` flag is left as pg-boss set it): it only touches children still blocked, and
          // those are the ones this DAG keeps waiting (a merge, a parent not done).
          node.state = 'completed';
          node.chosen = result.chosen ?? null;
          after.events.push({
            what: `${node.plan_node}.completed`,
            status: 'OK',
            payload: { node_id, attempt },
          });
          this.#settle(w, dag, plan, rows, [node_id], after);
          return true;
        }
        const message = result.error.message;
        const failed = await this.jobs.boss.fail(
          queue,
          fence,
          { message, name: result.error.name },
          { db },
        );
        if (!affected(failed)) return false;
        const state = (
          await client.query(
            `SELECT state::text FROM ${this.#jobTable(queue)} WHERE name = $1 AND id = $2`,
            [queue, job.id],
          )
        ).rows[0]?.state as string | undefined;
        if (state === 'retry' || state === 'created') {
          w.push(
            `UPDATE ${this.t('dag_node')} SET state = 'pending', attempts = ${attempt},
             error = ${J({ message })}
           WHERE dag_id = ${id} AND node_id = ${L(node_id)}`,
          );
          return true;
        }
        w.push(
          `UPDATE ${this.t('dag_node')} SET attempts = ${attempt}, started_on = COALESCE(started_on, ${began})
         WHERE dag_id = ${id} AND node_id = ${L(node_id)}`,
        );
        this.#failed(w, dag, node, plan, rows, message, after);
        return true;
      },
      completion,
      // The DAG's fields from this process (they do not change) and its plan cached: a run still
      // active under the lock means the DAG is live, so its row is not read again.
      this.#planCache.has(dag_id) ? this.#liveDag(dag_id) : undefined,
    );
    await this.#afterCommit(dag_id, after);
    return ok;
  }

  /**
   * Runs `fn` in a transaction that holds the DAG's row lock, with the DAG and its node rows read
   * after the lock was taken (BEGIN, the lock and the read in one message); `fn` adds statements
   * to `w`, sent with COMMIT in one message when it returns true. False, or a throw: rolled back.
   * `first`, a statement run after the lock and before the reads (in the same message), gives
   * `fn` its rows. `dag`, the DAG's row as the caller knows it: not read again (a run's end, whose
   * run still active proves the DAG live; `fn` returns false otherwise).
   */
  async #locked(
    dagId: string,
    fn: (
      client: pg.PoolClient,
      dag: DagRow,
      rows: Map<string, NodeRow>,
      w: string[],
      first: Record<string, unknown>[],
    ) => Promise<boolean>,
    first?: string,
    known?: DagRow,
  ): Promise<boolean> {
    if (!isUuid(dagId)) return false;
    return this.#withClient(async (client) => {
      try {
        const res = (await client.query(
          // A transaction-scoped advisory lock per DAG (memory only: no row lock written to the
          // WAL on every run's end); the reads after it see what the last holder committed.
          `BEGIN; SELECT pg_advisory_xact_lock(${this.#lockSpace}, hashtext(${L(dagId)}));${first ? `\n${first};` : ''}${
            known
              ? ''
              : `
           SELECT ${DAG_COLUMNS}${this.#planCache.has(dagId) ? '' : ', plan_doc'}
             FROM ${this.t('dag')} WHERE id = ${L(dagId)};`
          }
           SELECT ${NODE_COLUMNS} FROM ${this.t('dag_node')} WHERE dag_id = ${L(dagId)}`,
        )) as unknown as pg.QueryResult[];
        const at = first ? 3 : 2;
        const dag = known ?? (res[at]!.rows[0] as DagRow | undefined);
        const nodes = res[known ? at : at + 1]!.rows as NodeRow[];
        await this.#lookUpTables(nodes.map((r) => r.queue));
        const w: string[] = [];
        const go =
          dag !== undefined &&
          (await fn(
            client,
            dag,
            new Map(nodes.map((r) => [r.node_id, r])),
            w,
            first ? res[2]!.rows : [],
          ));
        if (!go) {
          await client.query('ROLLBACK');
          return false;
        }
        await client.query(`${w.join(';\n')}${w.length ? ';\n' : ''}COMMIT`);
        return true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  /** A run failed for good: its row, then its policy (fail the DAG, or resolve its children). */
  #failed(
    w: string[],
    dag: DagRow,
    node: NodeRow,
    plan: Plan,
    rows: Map<string, NodeRow>,
    message: string,
    after: After,
  ): void {
    w.push(
      `UPDATE ${this.t('dag_node')} SET state = 'failed', ended_on = now(), runs = runs + 1,
         error = ${J({ message })}
       WHERE dag_id = ${L(dag.id)} AND node_id = ${L(node.node_id)}`,
    );
    node.state = 'failed';
    after.events.push({
      what: `${node.plan_node}.failed`,
      status: 'FAILED',
      payload: { node_id: node.node_id, error: message },
    });
    const policy = plan.byId.get(node.plan_node)!.onFailure;
    if (policy === 'fail_dag') {
      this.#cancelRest(w, dag.id, rows);
      this.#endDag(w, dag, 'failed', { node_id: node.node_id, message }, after);
      return;
    }
    this.#settle(w, dag, plan, rows, [node.node_id], after);
  }

  /** Cancels every run of a DAG that has not ended; running ones are told to abort. */
  #cancelRest(w: string[], dagId: string, rows: Map<string, NodeRow>): void {
    for (const r of rows.values()) if (!NODE_ENDED.has(r.state)) r.state = 'cancelled';
    w.push(
      `WITH c AS (
         UPDATE ${this.t('dag_node')} SET state = 'cancelled', ended_on = now()
         WHERE dag_id = ${L(dagId)} AND state IN ('blocked', 'pending', 'active')
         RETURNING queue, job_id),
       j AS (
         UPDATE ${this.schema}.job SET state = 'cancelled', completed_on = ${this.schema}.job_now()
         FROM c WHERE ${this.schema}.job.name = c.queue AND ${this.schema}.job.id = c.job_id
           AND ${this.schema}.job.state < 'completed'
         RETURNING 1)
       SELECT pg_notify(${L(CANCEL_CHANNEL)}, c.job_id::text), (SELECT count(*) FROM j) FROM c`,
    );
  }

  #endDag(
    w: string[],
    dag: DagRow,
    state: DagState,
    error: { node_id: string; message: string } | null,
    after: After,
  ): void {
    w.push(
      `UPDATE ${this.t('dag')} SET state = ${L(state)}, ended_on = now(),
         error = ${error ? J(error) : 'NULL'} WHERE id = ${L(dag.id)}`,
    );
    dag.state = state;
    after.dag = { ...dag, state, ended_on: new Date(), error };
    after.events.push({
      what: state,
      status: state === 'completed' ? 'OK' : state === 'failed' ? 'FAILED' : 'INFO',
      ...(error ? { payload: { ...error } } : {}),
    });
  }

  /**
   * Resolves the children of runs that ended, to a fixpoint: a child whose parents allow it becomes
   * runnable now (its pg-boss job released), one that can no longer run is skipped (its job
   * cancelled) and its own children looked at in turn. Then the DAG's state.
   */
  #settle(
    w: string[],
    dag: DagRow,
    plan: Plan,
    rows: Map<string, NodeRow>,
    ended: string[],
    after: After,
  ): void {
    const children = new Map<string, string[]>();
    for (const r of rows.values())
      for (const p of r.needs) children.set(p, [...(children.get(p) ?? []), r.node_id]);
    const work = ended.flatMap((id) => children.get(id) ?? []);
    const ready: NodeRow[] = [];
    const skipped: NodeRow[] = [];
    while (work.length) {
      const id = work.shift()!;
      const c = rows.get(id)!;
      if (c.state !== 'blocked') continue;
      const d = decide(plan, c, rows);
      if (d === 'ready') {
        c.state = 'pending';
        ready.push(c);
      } else if (d === 'skip') {
        c.state = 'skipped';
        skipped.push(c);
        work.push(...(children.get(id) ?? []));
      }
    }
    const id = L(dag.id);
    if (ready.length) {
      const names = ready.map((r) => r.node_id);
      // One statement: the rows, pg-boss's own release of each child's job (done now rather than
      // at its resolver's next pass; one update per queue, each on its table), the workers told.
      const release = this.#byQueue(
        ready,
        (q, ids) =>
          `UPDATE ${this.#jobTable(q)} j SET pending_dependencies = 0, blocked = false,
             start_after = GREATEST(j.start_after, ${this.schema}.job_now())
           WHERE j.name = ${L(q)} AND j.id = ANY(${U(ids)}) AND j.blocked`,
      );
      w.push(
        `WITH r AS (
           UPDATE ${this.t('dag_node')} SET state = 'pending', ready_on = now()
           WHERE dag_id = ${id} AND node_id = ANY(${A(names)}))${release.map((u, i) => `,\n         j${i} AS (${u})`).join('')}
         SELECT pg_notify(${L(READY_CHANNEL)}, q) FROM unnest(${A([...new Set(ready.map((r) => r.queue))])}) AS q`,
      );
    }
    if (skipped.length) {
      w.push(
        `UPDATE ${this.t('dag_node')} SET state = 'skipped', ended_on = now()
         WHERE dag_id = ${id} AND node_id = ANY(${A(skipped.map((r) => r.node_id))})`,
        ...this.#cancelSql(skipped),
      );
    }
    // The DAG ends when every run has.
    const open = [...rows.values()].some((r) => !NODE_ENDED.has(r.state));
    if (!open && !DAG_ENDED.has(dag.state)) this.#endDag(w, dag, 'completed', null, after);
  }

  /** One statement per queue (pg-boss's job table is partitioned by queue: each prunes to one). */
  #byQueue(
    runs: { queue: string; job_id: string }[],
    sql: (queue: string, ids: string[]) => string,
  ): string[] {
    const by = new Map<string, string[]>();
    for (const r of runs) by.set(r.queue, [...(by.get(r.queue) ?? []), r.job_id]);
    return [...by].map(([q, ids]) => sql(q, ids));
  }

  /** pg-boss's cancel of runs that have not ended (skipped ones: never started). */
  #cancelSql(runs: { queue: string; job_id: string }[]): string[] {
    return this.#byQueue(
      runs,
      (q, ids) =>
        `UPDATE ${this.#jobTable(q)} j SET state = 'cancelled', completed_on = ${this.schema}.job_now()
         WHERE j.name = ${L(q)} AND j.id = ANY(${U(ids)}) AND j.state < 'completed'`,
    );
  }

  async #afterCommit(dagId: string, after: After): Promise<void> {
    if (!after.events.length) return;
    const dag =
      after.dag ??
      ((
        await this.#pool.query(`SELECT plan, ref_type FROM ${this.t('dag')} WHERE id = $1`, [dagId])
      ).rows[0] as DagRow | undefined);
    if (!dag) return;
    for (const e of after.events)
      await this.#event(dag.plan, e.what, dagId, e.status, e.payload, dag.ref_type);
    if (after.dag && DAG_ENDED.has(after.dag.state)) {
      this.#planCache.delete(dagId);
      this.#dagCache.delete(dagId);
    }
  }

  #event(
    plan: string,
    what: string,
    dagId: string,
    status: 'INFO' | 'OK' | 'FAILED',
    payload?: Record<string, unknown>,
    refType?: string | null,
  ): Promise<void> {
    return this.jobs.event(plan, what, dagId, status, payload, refType);
  }

  // The API's operations ------------------------------------------------------------------------

  /** Cancels what is pending and aborts what runs. Undefined for an unknown id. */
  async cancel(id: string): Promise<DagView | undefined> {
    if (!isUuid(id)) return undefined;
    await this.start();
    const after: After = { events: [] };
    let found = false;
    await this.#locked(id, async (_client, dag, rows, w) => {
      found = true;
      if (DAG_ENDED.has(dag.state)) return false;
      this.#cancelRest(w, id, rows);
      this.#endDag(w, dag, 'cancelled', null, after);
      return true;
    });
    if (!found) return undefined;
    await this.#afterCommit(id, after);
    return this.get(id);
  }

  /**
   * Runs again what failed or was cancelled, and what depends on it; completed runs keep their
   * outputs and do not run again. 409 while the DAG runs or when nothing is left to run.
   */
  async retry(id: string): Promise<DagView | undefined> {
    if (!isUuid(id)) return undefined;
    await this.start();
    const after: After = { events: [] };
    let found = false;
    await this.#locked(id, async (client, dag, rows, w) => {
      found = true;
      if (!DAG_ENDED.has(dag.state))
        throw new MarieError(
          ErrorCode.Aborted,
          `dag ${id} is ${dag.state}: retry it once it ended`,
        );
      const plan = this.planOf(dag);
      const children = new Map<string, string[]>();
      for (const r of rows.values())
        for (const p of r.needs) children.set(p, [...(children.get(p) ?? []), r.node_id]);
      const reset = new Set<string>();
      const work = [...rows.values()]
        .filter((r) => r.state === 'failed' || r.state === 'cancelled')
        .map((r) => r.node_id);
      while (work.length) {
        const n = work.shift()!;
        if (reset.has(n)) continue;
        reset.add(n);
        for (const c of children.get(n) ?? []) if (rows.get(c)!.state !== 'completed') work.push(c);
      }
      if (reset.size === 0)
        throw new MarieError(ErrorCode.Aborted, `dag ${id}: nothing failed or was cancelled`);
      const runs = [...rows.values()].filter((r) => reset.has(r.node_id));
      const jobIds = new Map(runs.map((r) => [r.node_id, randomUUID()]));
      await client.query(
        `UPDATE ${this.t('dag_node')} n SET state = 'blocked', job_id = x.job_id,
           attempt_base = n.attempts, error = NULL, started_on = NULL, ended_on = NULL,
           ready_on = NULL, chosen = NULL
         FROM unnest($2::text[], $3::uuid[]) AS x(node_id, job_id)
         WHERE n.dag_id = $1 AND n.node_id = x.node_id`,
        [id, [...jobIds.keys()], [...jobIds.values()]],
      );
      const jobsSql = await this.#jobsSql(
        runs.map((r) =>
          this.flowJobOf(
            plan,
            { ...r, kind: r.kind as NodeRun['kind'] },
            id,
            jobIds,
            dag.priority + dag.sla_bucket * SLA + RUNNING,
            reset,
          ),
        ),
        (sql) => client.query(sql),
      );
      w.push(...jobsSql);
      for (const r of runs) {
        r.state = 'blocked';
        r.job_id = jobIds.get(r.node_id)!;
        r.chosen = null;
      }
      w.push(
        `UPDATE ${this.t('dag')} SET state = 'running', ended_on = NULL, error = NULL WHERE id = ${L(id)}`,
      );
      dag.state = 'running';
      after.events.push({ what: 'retried', status: 'INFO', payload: { nodes: reset.size } });
      // Runs whose parents all stay as they were were inserted free by pg-boss: ready, or skipped
      // (a parent skipped), now.
      const roots = runs.filter((r) => !r.needs.some((p) => reset.has(p)));
      const ready = roots.filter((r) => decide(plan, r, rows) !== 'skip');
      const skip = roots.filter((r) => !ready.includes(r));
      for (const r of ready) r.state = 'pending';
      if (ready.length)
        w.push(
          `UPDATE ${this.t('dag_node')} SET state = 'pending', ready_on = now()
           WHERE dag_id = ${L(id)} AND node_id = ANY(${A(ready.map((r) => r.node_id))})`,
          `SELECT pg_notify(${L(READY_CHANNEL)}, q) FROM unnest(${A([...new Set(ready.map((r) => r.queue))])}) AS q`,
        );
      if (skip.length) {
        for (const r of skip) r.state = 'skipped';
        w.push(
          `UPDATE ${this.t('dag_node')} SET state = 'skipped', ended_on = now()
           WHERE dag_id = ${L(id)} AND node_id = ANY(${A(skip.map((r) => r.node_id))})`,
          ...this.#cancelSql(skip),
        );
        this.#settle(
          w,
          dag,
          plan,
          rows,
          skip.map((r) => r.node_id),
          after,
        );
      }
      return true;
    });
    if (!found) return undefined;
    await this.#afterCommit(id, after);
    return this.get(id);
  }

  /** A DAG with every node, or undefined for an unknown id. */
  async get(id: string, options: { outputs?: boolean } = {}): Promise<DagView | undefined> {
    if (!isUuid(id)) return undefined;
    await this.start();
    const dag = (await this.#pool.query(`SELECT * FROM ${this.t('dag')} WHERE id = $1`, [id]))
      .rows[0] as DagRow | undefined;
    if (!dag) return undefined;
    const nodes = (
      await this.#pool.query(
        // A run that started its work without a write of its own (it had parents) reads as
        // active from pg-boss's job: its state, start and attempt are there.
        `SELECT n.*, o.inline, o.key, j.state::text AS job_state, j.started_on AS job_started,
                j.retry_count AS job_retries
         FROM ${this.t('dag_node')} n
         LEFT JOIN ${this.t('dag_output')} o ON o.dag_id = n.dag_id AND o.node_id = n.node_id
           AND o.attempt = n.output_attempt
         LEFT JOIN ${this.schema}.job j ON n.state = 'pending' AND j.name = n.queue AND j.id = n.job_id
         WHERE n.dag_id = $1 ORDER BY n.level, n.plan_node, n.element NULLS LAST`,
        [id],
      )
    ).rows as ViewRow[];
    for (const n of nodes)
      if (n.state === 'pending' && n.job_state === 'active') {
        n.state = 'active';
        n.started_on = n.job_started;
        n.attempts = n.attempt_base + (n.job_retries ?? 0) + 1;
      }
    const view = dagView(dag, nodes);
    const withOutputs = options.outputs ?? true;
    const plan = this.planOf(dag);
    view.nodes = nodes.map((n) => nodeView(n, withOutputs, plan));
    return view;
  }

  /** Newest first; `after` is the last dag_id of the previous page. */
  async list(
    options: {
      state?: DagState;
      plan?: string;
      ref_id?: string;
      limit?: number;
      after?: string;
    } = {},
  ): Promise<DagView[]> {
    if (options.state !== undefined && !DAG_STATES.includes(options.state))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `state: "${options.state}" is not one of ${DAG_STATES.join(', ')}`,
        { field: 'state' },
      );
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new MarieError(ErrorCode.InvalidArgument, `limit: ${limit} is not 1-1000`, {
        field: 'limit',
      });
    if (options.after !== undefined && !isUuid(options.after))
      throw new MarieError(ErrorCode.InvalidArgument, `after: "${options.after}" is not a DAG id`, {
        field: 'after',
      });
    await this.start();
    const rows = (
      await this.#pool.query(
        `SELECT d.*,
           (SELECT count(*) FILTER (WHERE n.state IN ('completed', 'failed', 'cancelled', 'skipped'))::int
            FROM ${this.t('dag_node')} n WHERE n.dag_id = d.id) AS nodes_done,
           (SELECT count(*)::int FROM ${this.t('dag_node')} n WHERE n.dag_id = d.id) AS nodes_total
         FROM ${this.t('dag')} d
         WHERE ($1::text IS NULL OR d.state = $1) AND ($2::text IS NULL OR d.plan = $2)
           AND ($3::text IS NULL OR d.ref_id = $3)
           AND ($4::uuid IS NULL OR (d.created_on, d.id) <
             (SELECT created_on, id FROM ${this.t('dag')} WHERE id = $4))
         ORDER BY d.created_on DESC, d.id DESC LIMIT $5`,
        [
          options.state ?? null,
          options.plan ?? null,
          options.ref_id ?? null,
          options.after ?? null,
          limit,
        ],
      )
    ).rows as (DagRow & { nodes_done: number; nodes_total: number })[];
    return rows.map((r) => dagView(r, undefined, r.nodes_done, r.nodes_total));
  }

  // The sweep: what no transaction of ours ended -------------------------------------------------

  /**
   * One pass of upkeep (a DagService runs it every few seconds; one instance at a time by an
   * advisory lock): runs whose pg-boss job pg-boss itself failed (its heartbeat stale past its
   * retries, its expiry) or lost end as failed under their policy; queued runs of DAGs whose SLA
   * bucket moved get their priority raised. Returns what it did.
   */
  async sweep(now = new Date()): Promise<{ failed: number; raised: number }> {
    await this.start();
    const locked = await this.#pool.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
      `${this.schema}.marie_dag_sweep`,
    ]);
    if (!locked.rows[0].ok) return { failed: 0, raised: 0 };
    try {
      let failed = 0;
      const lost = (
        await this.#pool.query(
          `SELECT n.dag_id, n.node_id, n.queue, n.job_id, j.state::text AS job_state,
                  j.output->>'message' AS message
           FROM ${this.t('dag')} d
           JOIN ${this.t('dag_node')} n ON n.dag_id = d.id
           LEFT JOIN ${this.schema}.job j ON j.name = n.queue AND j.id = n.job_id
           WHERE d.state IN ('pending', 'running') AND n.state IN ('pending', 'active')
             AND (j.id IS NULL OR j.state::text IN ('failed', 'cancelled', 'completed'))
           LIMIT 500`,
        )
      ).rows as {
        dag_id: string;
        node_id: string;
        job_id: string;
        job_state: string | null;
        message: string | null;
      }[];
      for (const l of lost) {
        const after: After = { events: [] };
        const did = await this.#locked(l.dag_id, async (_client, dag, rows, w) => {
          const node = rows.get(l.node_id);
          if (!node || node.job_id !== l.job_id || !['pending', 'active'].includes(node.state))
            return false;
          const message =
            l.job_state === null
              ? 'its pg-boss job is gone'
              : `pg-boss ended its job as ${l.job_state}${l.message ? `: ${l.message}` : ''}`;
          this.#failed(w, dag, node, this.planOf(dag), rows, message, after);
          return true;
        });
        if (did) {
          failed++;
          await this.#afterCommit(l.dag_id, after);
        }
      }
      // SLA buckets.
      let raised = 0;
      const live = (
        await this.#pool.query(
          `SELECT id, created_on, soft_sla, hard_sla, sla_bucket FROM ${this.t('dag')}
           WHERE state IN ('pending', 'running') AND (soft_sla IS NOT NULL OR hard_sla IS NOT NULL)`,
        )
      ).rows as DagRow[];
      for (const d of live) {
        const b = slaBucket(d.soft_sla, d.hard_sla, d.created_on, now);
        if (b === d.sla_bucket) continue;
        // The bucket and its queued jobs' priority together, in one statement.
        await this.#pool.query(
          `WITH d AS (UPDATE ${this.t('dag')} SET sla_bucket = $2 WHERE id = $1)
           UPDATE ${this.schema}.job j SET priority = j.priority + $3
           FROM ${this.t('dag_node')} n
           WHERE n.dag_id = $1 AND n.state IN ('pending', 'blocked') AND j.name = n.queue
             AND j.id = n.job_id AND j.state < 'active'`,
          [d.id, b, (b - d.sla_bucket) * SLA],
        );
        raised++;
      }
      return { failed, raised };
    } finally {
      await this.#pool.query('SELECT pg_advisory_unlock(hashtext($1))', [
        `${this.schema}.marie_dag_sweep`,
      ]);
    }
  }

  /** DAGs by state, and node run and unblock times of this process (`marie_dag_*`). */
  async metrics(): Promise<MetricFamily[]> {
    const counts = (
      await this.#pool
        .query(`SELECT state, count(*)::int AS n FROM ${this.t('dag')} GROUP BY state`)
        .catch(() => ({ rows: [] }))
    ).rows as { state: string; n: number }[];
    return [
      {
        name: 'marie_dags',
        help: 'DAG runs by state',
        type: 'gauge',
        labelNames: ['state'],
        samples: DAG_STATES.map((state) => ({
          labels: { state },
          value: counts.find((c) => c.state === state)?.n ?? 0,
        })),
      },
      {
        name: 'marie_dag_node_run_seconds_total',
        help: 'Seconds node runs took in this process',
        type: 'counter',
        labelNames: [],
        samples: [{ value: this.stats.run.sum }],
      },
      {
        name: 'marie_dag_node_runs_total',
        help: 'Node runs this process ended',
        type: 'counter',
        labelNames: [],
        samples: [{ value: this.stats.run.count }],
      },
      {
        name: 'marie_dag_unblock_seconds_total',
        help: 'Seconds from a run becoming runnable to its start, summed (this process)',
        type: 'counter',
        labelNames: [],
        samples: [{ value: this.stats.unblock.sum }],
      },
      {
        name: 'marie_dag_unblocked_total',
        help: 'Runs started after becoming runnable (this process)',
        type: 'counter',
        labelNames: [],
        samples: [{ value: this.stats.unblock.count }],
      },
    ];
  }
}

/**
 * 0 on time; 1 when 80% of the time to the soft SLA has passed; 2 past the soft SLA; 3 past the
 * hard SLA.
 */
export function slaBucket(soft: Date | null, hard: Date | null, created: Date, now: Date): number {
  const t = now.getTime();
  if (hard && t >= new Date(hard).getTime()) return 3;
  if (soft && t >= new Date(soft).getTime()) return 2;
  const first = soft ?? hard;
  if (first) {
    const start = new Date(created).getTime();
    const end = new Date(first).getTime();
    if (t >= start + 0.8 * (end - start)) return 1;
  }
  return 0;
}

/** What a run's end reads of its DAG (its plan's document only when this process has not parsed it). */
const DAG_COLUMNS =
  'id, plan, version, state, ref_type, priority, sla_bucket, created_on, started_on';
/** What resolution, a retry and a cancel read of the node rows. */
const NODE_COLUMNS =
  'dag_id, node_id, plan_node, element, kind, queue, job_id, needs, level, state, attempts, attempt_base, runs, ready_on, chosen';

/** The name of the guard that rolls back a submit whose idempotency key another took. */
const TAKEN_GUARD = 'marie_idempotency_key_taken';

/** pg-boss's command answers carry `affected` (its types do not say so). */
const affected = (r: object) => (r as { affected?: number }).affected ?? 0;

export type { PlanNode };
