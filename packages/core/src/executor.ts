import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchingOptions } from './requests.js';

/** What an executor reports to health checks. */
export interface ExecutorHealth {
  serving: boolean;
  /** Why it is not serving (empty while serving). */
  reason: string;
}

/** Metadata of an executor (YAML `metas:`). */
export interface Metas {
  /** Name of the executor; the class name unless given. */
  name: string;
  description: string;
  /** Root of the workspace tree (see `Executor.workspace`). */
  workspace?: string;
  /** Modules the executor was loaded from (YAML `py_modules`/`modules`). */
  modules: string[];
}

/** Where and how the executor runs; filled by the runtime (Deployment, Flow, CLI). */
export interface RuntimeArgs {
  /** The deployment name: routes carry it, parameters are scoped by it. */
  name: string;
  shardId: number;
  shards: number;
  replicas: number;
  replicaId: number;
  workspace?: string;
  /** Let sync endpoint methods run concurrently (they are serialized otherwise). */
  allowConcurrent?: boolean;
  [key: string]: unknown;
}

/** What the base constructor takes, beside the executor's own configuration (`with`). */
export interface ExecutorArgs {
  metas?: Partial<Metas>;
  runtimeArgs?: Partial<RuntimeArgs>;
  /** Endpoint -> method name remaps (YAML `requests:`), over the decorators' bindings. */
  requests?: Record<string, string>;
  /** Endpoint -> batching (YAML `dynamic_batching:`), over `@dynamicBatching`. */
  dynamicBatching?: Record<string, BatchingOptions>;
}

/** Keys of ExecutorArgs: the base constructor takes them, so a YAML `with:` may not use them. */
export const RESERVED_ARGS: readonly string[] = [
  'metas',
  'runtimeArgs',
  'requests',
  'dynamicBatching',
];

/** Where an instance keeps its YAML overrides; a symbol so that no executor field can clash with it. */
export const OVERRIDES: unique symbol = Symbol('marie.overrides');

/** Per instance, the keys its base constructor was handed ('all' for a tracked config itself). */
export const receivedKeys = new WeakMap<object, string[] | 'all'>();
/** Config objects the loader watches; enumerating one here would look like a use of every key. */
export const trackedConfigs = new WeakSet<object>();

/**
 * The base of every executor. Subclass it, bind methods with `@requests`, take your configuration
 * in the constructor and pass the rest on:
 *
 * ```ts
 * class MyExecutor extends Executor {
 *   constructor({ model_path, device = 'cuda', ...rest }: { model_path: string; device?: string } & ExecutorArgs) {
 *     super(rest);
 *   }
 * }
 * ```
 */
export class Executor implements AsyncDisposable {
  readonly metas: Metas;
  readonly runtimeArgs: RuntimeArgs;
  /** YAML `requests:` and `dynamic_batching:` for this instance (the request handler reads them). */
  readonly [OVERRIDES]: Pick<ExecutorArgs, 'requests' | 'dynamicBatching'>;
  #workspace?: string;
  #health: ExecutorHealth = { serving: true, reason: '' };
  readonly #healthListeners = new Set<(health: Readonly<ExecutorHealth>) => void>();
  readonly #terminators = new Set<(reason: string, exitCode: number) => void | Promise<void>>();

  constructor(args: ExecutorArgs = {}) {
    receivedKeys.set(this, trackedConfigs.has(args) ? 'all' : Object.keys(args));
    const className = new.target.name;
    const metas = args.metas ?? {};
    this.metas = {
      name: metas.name || className,
      description: metas.description ?? '',
      modules: metas.modules ?? [],
      ...(metas.workspace === undefined ? {} : { workspace: metas.workspace }),
    };
    const runtime = args.runtimeArgs ?? {};
    this.runtimeArgs = {
      ...runtime,
      name: runtime.name || this.metas.name,
      shardId: runtime.shardId ?? 0,
      shards: runtime.shards ?? 1,
      replicas: runtime.replicas ?? 1,
      replicaId: runtime.replicaId ?? 0,
    };
    this[OVERRIDES] = {};
    if (args.requests) this[OVERRIDES].requests = args.requests;
    if (args.dynamicBatching) this[OVERRIDES].dynamicBatching = args.dynamicBatching;

    // close() runs once however often and from wherever it is called: wrap the subclass's own.
    const close = this.close;
    let closing: Promise<void> | undefined;
    Object.defineProperty(this, 'close', {
      value: (): Promise<void> => (closing ??= Promise.resolve().then(() => close.call(this))),
      configurable: true,
      writable: true,
    });
  }

  /**
   * A directory reserved for this instance: `<workspace>/<name>/<shardId>`, created on first use.
   * The root is `runtimeArgs.workspace`, else `metas.workspace`, else `$MARIE_WORKSPACE`, else
   * `<os tmpdir>/marie-workspace`.
   */
  get workspace(): string {
    if (this.#workspace === undefined) {
      const root =
        this.runtimeArgs.workspace ??
        this.metas.workspace ??
        process.env.MARIE_WORKSPACE ??
        join(tmpdir(), 'marie-workspace');
      const dir = join(root, this.metas.name, String(this.runtimeArgs.shardId));
      mkdirSync(dir, { recursive: true });
      this.#workspace = dir;
    }
    return this.#workspace;
  }

  /**
   * Acquires what needs I/O before serving (database connections, models). Override it; the runtime
   * awaits it once, before the first request; a rejection stops startup with its message.
   */
  async open(): Promise<void> {}

  /**
   * Runs for Jina's dry run (`_jina_dry_run_`), after the runtime's own checks: a MarieExecutor
   * runs one health probe here. A rejection makes the dry run fail with its message.
   */
  async dryRun(): Promise<void> {}

  /** Whether this executor can serve now: the gRPC health service and HTTP `GET /` report it. */
  get health(): Readonly<ExecutorHealth> {
    return this.#health;
  }

  /** Changes what the health checks report (NOT_SERVING / 503 while `serving` is false). */
  setHealth(serving: boolean, reason = ''): void {
    if (this.#health.serving === serving && this.#health.reason === reason) return;
    this.#health = { serving, reason };
    for (const fn of this.#healthListeners) fn(this.#health);
  }

  /** Calls `fn` on every health change; returns its removal. */
  onHealthChange(fn: (health: Readonly<ExecutorHealth>) => void): () => void {
    this.#healthListeners.add(fn);
    return () => this.#healthListeners.delete(fn);
  }

  /**
   * Asks the runtime to stop this process after a fatal failure: it drains in-flight requests
   * and exits with `exitCode`. Without a runtime listening (a script, a test), it rejects.
   */
  async terminate(reason: string, exitCode: number): Promise<void> {
    if (this.#terminators.size === 0)
      throw new Error(`${this.metas.name}: fatal (${reason}), and no runtime listens to terminate`);
    await Promise.all([...this.#terminators].map((fn) => fn(reason, exitCode)));
  }

  /** For runtimes: what to do when the executor asks to terminate. */
  onTerminate(fn: (reason: string, exitCode: number) => void | Promise<void>): () => void {
    this.#terminators.add(fn);
    return () => this.#terminators.delete(fn);
  }

  /** Releases resources. Override it; the runtime awaits it exactly once, however the executor stops. */
  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export type ExecutorClass<E extends Executor = Executor> = new (args: any) => E;

export function isExecutorClass(value: unknown): value is ExecutorClass {
  return typeof value === 'function' && value.prototype instanceof Executor;
}
