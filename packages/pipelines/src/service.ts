import {
  ConfigError,
  createDataRequest,
  createLogger,
  DRY_RUN_ENDPOINT,
  type Logger,
  throwIfError,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import type { Flow } from '@marie/flow';
import { type JobService, processorTarget } from '@marie/jobs';
import { FileHandler, parseS3Config, StorageManager } from '@marie/storage';
import type { FastifyInstance } from 'fastify';
import { Dags } from './dags.js';
import { type KnownEndpoints, loadPlanFile, type Plan, parsePlan } from './plan.js';
import { dagRoutes } from './routes.js';
import { dagUi } from './ui.js';
import { type DagTarget, DagWorker } from './worker.js';

/** A `jobs:` section's `dags:` settings. */
export interface DagsConfig {
  /** Control runs at a time per process (8). */
  control: number;
  /** Runs at a time per replica of an executor, by executor name (1 each). */
  concurrency: Record<string, number>;
  /** Runs at a time of the Flow's own `/path` endpoints (4). */
  flowSlots: number;
  /** Where outputs over 64 KiB go (`file://` or `s3://` prefix; default: beside the uploads). */
  outputs?: string;
  /** Seconds between two sweeps (SLA priorities, runs pg-boss ended on its own): 2. */
  sweepInterval: number;
  /** Serve the DAG API (true). */
  api: boolean;
}

const DAG_KEYS = new Set([
  'control',
  'concurrency',
  'flow_slots',
  'outputs',
  'sweep_interval',
  'api',
]);

/** Reads `jobs.dags`; errors name the key. */
export function parseDagsConfig(raw: unknown, path = 'jobs.dags'): DagsConfig {
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping`);
  for (const k of Object.keys(raw))
    if (!DAG_KEYS.has(k))
      throw new ConfigError(`${path}.${k}: unknown key (known: ${[...DAG_KEYS].join(', ')})`);
  const whole = (k: string, fallback: number, min: number): number => {
    const v = raw[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 10_000)
      throw new ConfigError(`${path}.${k}: expected a whole number ${min}-10000`);
    return v;
  };
  const concurrency: Record<string, number> = {};
  if (raw.concurrency !== undefined) {
    if (!isPlainObject(raw.concurrency))
      throw new ConfigError(`${path}.concurrency: expected a mapping executor -> runs per replica`);
    for (const [name, v] of Object.entries(raw.concurrency)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000)
        throw new ConfigError(`${path}.concurrency.${name}: expected a whole number 1-1000`);
      concurrency[name] = v;
    }
  }
  if (raw.outputs !== undefined && typeof raw.outputs !== 'string')
    throw new ConfigError(`${path}.outputs: expected a file:// or s3:// prefix`);
  if (raw.api !== undefined && typeof raw.api !== 'boolean')
    throw new ConfigError(`${path}.api: expected true or false`);
  return {
    control: whole('control', 8, 0),
    concurrency,
    flowSlots: whole('flow_slots', 4, 0),
    ...(typeof raw.outputs === 'string' ? { outputs: raw.outputs } : {}),
    sweepInterval: whole('sweep_interval', 2, 1),
    api: raw.api ?? true,
  };
}

/** Plans from `jobs.plans`: files (YAML or JSON) and inline mappings; names must not repeat. */
export async function loadPlans(
  raw: unknown,
  known?: KnownEndpoints,
  path = 'jobs.plans',
): Promise<Plan[]> {
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  const plans: Plan[] = [];
  for (const [i, p] of list.entries()) {
    const at = `${path}[${i}]`;
    if (typeof p === 'string') plans.push(await loadPlanFile(p, known ? { known } : {}));
    else if (isPlainObject(p)) plans.push(parsePlan(p, { where: at, ...(known ? { known } : {}) }));
    else throw new ConfigError(`${at}: expected a plan file or a plan mapping`);
  }
  const seen = new Set<string>();
  for (const p of plans) {
    const k = `${p.name}@${p.version}`;
    if (seen.has(k)) throw new ConfigError(`${path}: plan ${k} is defined twice`);
    seen.add(k);
  }
  return plans;
}

/**
 * A deployment (or any Routed executor) as a DAG target: its runs go to it directly, and it is
 * ready once its replicas answer the endpoint listing (the health check) and a dry run.
 */
export function deploymentTarget(d: {
  post: DagTarget['post'];
  send(
    req: ReturnType<typeof createDataRequest>,
    o?: object,
  ): Promise<ReturnType<typeof createDataRequest>>;
  endpoints(): Promise<unknown>;
}): DagTarget {
  return {
    post: (on, docs, options) => d.post(on, docs, options),
    async ready() {
      await d.endpoints();
      throwIfError(await d.send(createDataRequest({ endpoint: DRY_RUN_ENDPOINT })));
      return true;
    },
  };
}

/**
 * What a Flow serves, for checking plans' endpoints at load: each deployment's endpoints (as its
 * first replica lists them), and their union as what the Flow's own `/path` reaches.
 */
export async function knownEndpoints(flow: Flow): Promise<KnownEndpoints> {
  const executors = new Map<string, ReadonlySet<string>>();
  const all = new Set<string>();
  for (const [name, d] of flow.deployments) {
    const listing = (await d.endpoints().catch(() => undefined)) as
      | { endpoints?: string[] }
      | undefined;
    const ends = new Set(listing?.endpoints ?? []);
    executors.set(name, ends);
    for (const e of ends) all.add(e);
  }
  return { executors, ...(all.has('/default') ? {} : { flow: all }) };
}

/**
 * What a gateway's `jobs:` section runs for pipelines: its plans, the DAG API beside the job API,
 * a DAG worker whose executors are the Flow's deployments (slots: replicas times their
 * concurrency), and the sweep every few seconds. `open`, `plugins()` before the server listens,
 * `startWorkers(flow)` once the Flow answers, `stop()`.
 */
export class DagService {
  readonly dags: Dags;
  readonly config: DagsConfig;
  readonly #logger: Logger;
  #worker?: DagWorker;
  #timer?: NodeJS.Timeout;
  #sweeping?: Promise<unknown>;

  private constructor(dags: Dags, config: DagsConfig, logger: Logger) {
    this.dags = dags;
    this.config = config;
    this.#logger = logger;
  }

  /** Loads the plans and the DAG tables; the sweep starts here. */
  static async open(
    jobs: JobService,
    options: { plans?: unknown; dags?: unknown; logger?: Logger } = {},
  ): Promise<DagService> {
    const logger = options.logger ?? createLogger('dags');
    const config = parseDagsConfig(options.dags);
    const plans = await loadPlans(options.plans);
    // Assets are read (the pre-flight) where executors read them: the default roots
    // ($MARIE_STORAGE_ROOTS, else the working directory and temp folder), the uploads, and S3.
    const s3 = jobs.config.s3 === undefined ? undefined : parseS3Config(jobs.config.s3, 'jobs.s3');
    const storage = new StorageManager({
      file: { roots: [...new FileHandler().roots, ...jobs.uploads.files.roots] },
      ...(s3 ? { s3 } : {}),
    });
    const dags = new Dags({
      jobs: jobs.jobs,
      plans,
      storage,
      outputs: config.outputs ?? jobs.uploadKey('dag-outputs', '').replace(/\/+$/, ''),
      logger,
    });
    await dags.start();
    const service = new DagService(dags, config, logger);
    service.#timer = setInterval(() => {
      service.#sweeping ??= dags
        .sweep()
        .catch((err: Error) => logger.warn({ err: err.message }, 'DAG sweep failed'))
        .finally(() => {
          service.#sweeping = undefined;
        });
    }, config.sweepInterval * 1000);
    service.#timer.unref();
    return service;
  }

  /** The DAG API and its page, `/ui/dags`. */
  plugins(): ((app: FastifyInstance) => Promise<void>)[] {
    return this.config.api ? [dagRoutes(this.dags), dagUi(this.dags)] : [];
  }

  /**
   * Runs the DAG nodes of `executors` here (a Flow's deployments by `flowExecutors`); control
   * runs too, unless `control: 0`.
   */
  async startWorkers(
    executors: Record<string, { target: DagTarget; slots?: number }>,
  ): Promise<void> {
    if (this.#worker) return;
    this.#worker = new DagWorker(this.dags, {
      executors,
      control: this.config.control,
      logger: this.#logger,
    });
    await this.#worker.start();
  }

  /**
   * Checks every plan against what the started Flow serves (an unknown executor or endpoint is a
   * ConfigError naming the plan, the node and the endpoint), and inline plans submitted later too.
   */
  async checkPlans(flow: Flow): Promise<void> {
    const known = await knownEndpoints(flow);
    for (const p of this.dags.allPlans)
      parsePlan(p.source, { where: `jobs.plans: plan ${p.name} v${p.version}`, known });
    this.dags.endpoints = known;
  }

  /** A Flow's deployments as DAG executors (and its gateway as `flow`), with their slots. */
  flowExecutors(flow: Flow): Record<string, { target: DagTarget; slots: number }> {
    const out: Record<string, { target: DagTarget; slots: number }> = {};
    for (const [name, d] of flow.deployments) {
      const replicas = d.shards[0]?.length ?? 1;
      out[name] = {
        target: deploymentTarget(d as unknown as Parameters<typeof deploymentTarget>[0]),
        slots: replicas * (this.config.concurrency[name] ?? 1),
      };
    }
    if (this.config.flowSlots > 0 && flow.gateway)
      out.flow = { target: processorTarget(flow.gateway), slots: this.config.flowSlots };
    return out;
  }

  get active(): number {
    return this.#worker?.active ?? 0;
  }

  async stopWorkers(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#worker?.stop(options);
  }

  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    clearInterval(this.#timer);
    await this.stopWorkers(options);
    await this.#sweeping;
    await this.dags.stop();
  }
}
