import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigError,
  createDataRequest,
  createLogger,
  type Logger,
  type Processor,
  throwIfError,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { type Toast, toastFromConfig } from '@marie/events';
import {
  Database,
  JobRecords,
  parsePsqlConfig,
  parseS3Config,
  StorageManager,
} from '@marie/storage';
import type { FastifyInstance } from 'fastify';
import { Jobs } from './jobs.js';
import { jobRoutes } from './routes.js';
import { jobUi } from './ui.js';
import { type JobTarget, JobWorker } from './worker.js';

/** A Flow's `jobs:` section (or `marie worker`'s flags), read by `parseJobsConfig`. */
export interface JobsConfig {
  /** The Postgres every gateway and worker shares: a postgres:// URL. */
  database: string;
  /** pg-boss's schema ('pgboss'). */
  schema: string;
  /** Queues this process takes jobs from, with how many at a time; none: the API alone. */
  queues: Record<string, { concurrency: number }>;
  /** Marie's job records (`<records_schema>.marie_job`) kept in step (true). */
  records: boolean;
  recordsSchema: string;
  /** The `toast:` section of an executor: where job events go (none unless given). */
  toast?: unknown;
  /** Where `/ui` uploads are written: a folder, `file://` or `s3://` prefix. */
  uploads: string;
  /** `s3:` as in `storage.s3`, for `s3://` uploads. */
  s3?: unknown;
  /** Serve `/ui` (true). */
  ui: boolean;
  /** The endpoint `/ui` submits uploads to ('/document/extract'). */
  endpoint: string;
  /** How often pg-boss looks for runs whose worker is gone (seconds, 60). */
  superviseIntervalSeconds?: number;
  /** pg-boss's pool size (10); the index and the records keep 4 more, a worker's LISTEN 1. */
  poolSize: number;
  /** Seconds of silence after which a run's worker counts as gone (30; 0: none). */
  heartbeatSeconds?: number;
  /** Plans (files or inline) and the `dags:` settings, for @marie/pipelines, as written. */
  plans?: unknown;
  dags?: unknown;
}

const KEYS = new Set([
  'database',
  'schema',
  'queues',
  'records',
  'records_schema',
  'toast',
  'uploads',
  's3',
  'ui',
  'endpoint',
  'supervise_interval',
  'workers',
  'pool_size',
  'heartbeat',
  // Read by @marie/pipelines (its DagService), carried here as written.
  'plans',
  'dags',
]);

/**
 * Reads a `jobs:` section: `database` (postgres:// URL, or `$MARIE_JOBS_DATABASE_URL`), `queues`
 * (`{name: concurrency}`, `{name: {concurrency}}` or a list of names), `schema`, `records`,
 * `records_schema`, `toast`, `uploads`, `s3`, `ui`, `endpoint`, `supervise_interval`, `pool_size`,
 * `heartbeat`, and `workers`
 * (how many worker containers `marie export` plans; a running gateway works its queues itself).
 * Errors name the key.
 */
export function parseJobsConfig(
  raw: unknown,
  path = 'jobs',
  env: Record<string, string | undefined> = process.env,
): JobsConfig {
  if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping`);
  for (const k of Object.keys(raw))
    if (!KEYS.has(k))
      throw new ConfigError(`${path}.${k}: unknown key (known: ${[...KEYS].join(', ')})`);
  const database = raw.database ?? env.MARIE_JOBS_DATABASE_URL;
  if (typeof database !== 'string' || !/^postgres(ql)?:\/\//.test(database))
    throw new ConfigError(
      `${path}.database: give a postgres:// URL (or set MARIE_JOBS_DATABASE_URL); got ${database === undefined ? 'nothing' : JSON.stringify(typeof database === 'string' ? database.replace(/:[^:@/]*@/, ':***@') : database)}`,
    );
  const str = (k: string, fallback: string): string => {
    const v = raw[k];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || v === '') throw new ConfigError(`${path}.${k}: expected a string`);
    return v;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    const v = raw[k];
    if (v === undefined || v === null) return fallback;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new ConfigError(`${path}.${k}: expected true or false`);
  };
  const supervise = raw.supervise_interval;
  if (
    supervise !== undefined &&
    (typeof supervise !== 'number' || !Number.isInteger(supervise) || supervise < 1)
  )
    throw new ConfigError(`${path}.supervise_interval: expected whole seconds, at least 1`);
  const pool = raw.pool_size ?? 10;
  if (typeof pool !== 'number' || !Number.isInteger(pool) || pool < 2 || pool > 1000)
    throw new ConfigError(`${path}.pool_size: expected a whole number 2-1000`);
  const heartbeat = raw.heartbeat;
  if (
    heartbeat !== undefined &&
    heartbeat !== 0 &&
    (typeof heartbeat !== 'number' || !Number.isInteger(heartbeat) || heartbeat < 10)
  )
    throw new ConfigError(`${path}.heartbeat: expected whole seconds, at least 10 (0: none)`);
  return {
    database,
    poolSize: pool,
    ...(heartbeat === undefined ? {} : { heartbeatSeconds: heartbeat }),
    schema: str('schema', 'pgboss'),
    queues: parseQueues(raw.queues, `${path}.queues`),
    records: bool('records', true),
    recordsSchema: str('records_schema', 'public'),
    ...(raw.toast === undefined || raw.toast === null ? {} : { toast: raw.toast }),
    uploads: str('uploads', join(tmpdir(), 'marie-uploads')),
    ...(raw.s3 === undefined ? {} : { s3: raw.s3 }),
    ui: bool('ui', true),
    endpoint: str('endpoint', '/document/extract'),
    ...(supervise === undefined ? {} : { superviseIntervalSeconds: supervise }),
    ...(raw.plans === undefined ? {} : { plans: raw.plans }),
    ...(raw.dags === undefined ? {} : { dags: raw.dags }),
  };
}

/** `{name: 2}`, `{name: {concurrency: 2}}`, `[name, ...]` or `name=2` strings (the CLI's). */
export function parseQueues(
  raw: unknown,
  path = 'queues',
): Record<string, { concurrency: number }> {
  if (raw === undefined || raw === null) return {};
  const out: Record<string, { concurrency: number }> = {};
  const concurrency = (v: unknown, at: string): number => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000)
      throw new ConfigError(`${at}: concurrency ${JSON.stringify(v)} is not a whole number 1-1000`);
    return n;
  };
  const name = (q: string, at: string): string => {
    const queue = q.replace(/^\/+/, '').replace(/\//g, '.');
    if (!/^[A-Za-z0-9_.-]+$/.test(queue))
      throw new ConfigError(`${at}: "${q}" is not a queue name (letters, digits, _ . - /)`);
    return queue;
  };
  if (Array.isArray(raw)) {
    for (const [i, q] of raw.entries()) {
      if (typeof q !== 'string') throw new ConfigError(`${path}[${i}]: expected a queue name`);
      const [n, c] = q.split('=');
      out[name(n!, `${path}[${i}]`)] = {
        concurrency: c === undefined ? 1 : concurrency(c, `${path}[${i}]`),
      };
    }
    return out;
  }
  if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping or a list`);
  for (const [q, v] of Object.entries(raw)) {
    const c = isPlainObject(v) ? v.concurrency : v;
    out[name(q, `${path}.${q}`)] = {
      concurrency: c === undefined || c === null ? 1 : concurrency(c, `${path}.${q}`),
    };
  }
  return out;
}

/**
 * A Processor (a Flow's gateway, a RequestHandler) as a job target: the job's request goes
 * through it in process, its error answer becomes the run's error.
 */
export function processorTarget(processor: Processor): JobTarget {
  return {
    async post(on, docs, options) {
      const res = await processor.handle(
        createDataRequest({
          endpoint: on,
          docs: [...(docs as object[])],
          parameters: options.parameters ?? {},
        }),
        options.signal ? { signal: options.signal } : {},
      );
      throwIfError(res);
      const out = [...res.docs] as object[];
      options.onDone?.({ requestId: res.header.requestId, parameters: res.parameters, docs: out });
      return out;
    },
  };
}

/**
 * Jobs as a gateway (or `marie worker`) runs them: the job API and `/ui` as plugins of its HTTP
 * server, workers for the configured queues, Marie's job records and events. `open`, then
 * `plugins()` before the server listens, `startWorkers(target)` once the Flow answers, `stop()`.
 */
export class JobService {
  readonly config: JobsConfig;
  readonly jobs: Jobs;
  readonly uploads: StorageManager;
  readonly #db: Database | undefined;
  readonly #toast: Toast | undefined;
  readonly #logger: Logger;
  #worker?: JobWorker;

  private constructor(
    config: JobsConfig,
    jobs: Jobs,
    uploads: StorageManager,
    db: Database | undefined,
    toast: Toast | undefined,
    logger: Logger,
  ) {
    this.config = config;
    this.jobs = jobs;
    this.uploads = uploads;
    this.#db = db;
    this.#toast = toast;
    this.#logger = logger;
  }

  static async open(config: JobsConfig, options: { logger?: Logger } = {}): Promise<JobService> {
    const logger = options.logger ?? createLogger('jobs');
    const s3 = config.s3 === undefined ? undefined : parseS3Config(config.s3, 'jobs.s3');
    const local =
      !/^[a-z][a-z0-9+.-]*:\/\//i.test(config.uploads) || config.uploads.startsWith('file://');
    const uploadsDir = local ? resolve(config.uploads.replace(/^file:\/\//, '')) : undefined;
    // A local uploads folder is the only place the gateway reads (page images for /ui).
    const uploads = new StorageManager({
      ...(uploadsDir ? { file: { roots: [uploadsDir] } } : {}),
      ...(s3 ? { s3 } : {}),
    });
    const uploadsRoot = uploadsDir ? pathToFileURL(uploadsDir).href : config.uploads;
    let db: Database | undefined;
    let toast: Toast | undefined;
    let jobs: Jobs | undefined;
    try {
      let records: JobRecords | undefined;
      if (config.records) {
        db = await Database.connect(
          parsePsqlConfig({ enabled: true, url: config.database, pool_size: 4 }, 'jobs.database'),
          { logger },
        );
        records = new JobRecords(db, config.recordsSchema);
        await records.migrate();
      }
      if (config.toast !== undefined)
        toast = toastFromConfig(
          config.toast,
          {
            spoolDir: join(
              (config.toast as { spool_dir?: string }).spool_dir ?? tmpdir(),
              'marie-jobs-spool',
            ),
            logger,
          },
          'jobs.toast',
        );
      jobs = new Jobs({
        connectionString: config.database,
        schema: config.schema,
        max: config.poolSize,
        ...(config.heartbeatSeconds === undefined
          ? {}
          : { heartbeatSeconds: config.heartbeatSeconds }),
        ...(records ? { records } : {}),
        ...(toast ? { notify: (e) => toast!.notify(e) } : {}),
        ...(config.superviseIntervalSeconds
          ? { superviseIntervalSeconds: config.superviseIntervalSeconds }
          : {}),
        logger,
      });
      await jobs.start();
    } catch (err) {
      await jobs?.stop({ timeoutMs: 1000 }).catch(() => {});
      await toast?.close().catch(() => {});
      await db?.close().catch(() => {});
      throw err;
    }
    const service = new JobService(config, jobs, uploads, db, toast, logger);
    service.#uploadsRoot = uploadsRoot.replace(/\/+$/, '');
    return service;
  }

  #uploadsRoot = '';

  /** Where an upload named `name` is written (a fresh folder per upload). */
  uploadKey(id: string, name: string): string {
    return `${this.#uploadsRoot}/${id}/${name}`;
  }

  /** The job API (`/api/v1/jobs`) and, unless `ui: false`, `/ui`. */
  plugins(): ((app: FastifyInstance) => Promise<void>)[] {
    const out = [jobRoutes(this.jobs)];
    if (this.config.ui) out.push(jobUi(this));
    return out;
  }

  /** Starts the workers of the configured queues (none configured: nothing). */
  async startWorkers(target: JobTarget): Promise<void> {
    if (Object.keys(this.config.queues).length === 0 || this.#worker) return;
    this.#worker = new JobWorker(this.jobs, {
      queues: this.config.queues,
      target,
      endpoint: this.config.endpoint,
      logger: this.#logger,
    });
    await this.#worker.start();
  }

  /** Jobs running in this process now. */
  get active(): number {
    return this.#worker?.active ?? 0;
  }

  /** Stops the workers only (their running jobs finish first, up to `timeoutMs`). */
  async stopWorkers(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#worker?.stop(options);
  }

  /** Workers, then pg-boss, the events and the records' pool. */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.stopWorkers(options);
    await this.jobs.stop({ timeoutMs: options.timeoutMs ?? 10_000 }).catch((err: unknown) => {
      this.#logger.warn({ err: (err as Error).message }, 'pg-boss did not stop cleanly');
    });
    await this.#toast?.close();
    await this.#db?.close();
  }
}
