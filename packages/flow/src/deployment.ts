import { dirname } from 'node:path';
import {
  ConfigError,
  createLogger,
  ErrorCode,
  faultDir,
  findFaultMarkers,
  type Logger,
  MarieError,
  readYamlFile,
  removeFaultMarker,
  substituteVariables,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { Gateway } from './gateway.js';
import { Replica } from './replica.js';
import { cudaVisibleDevices, type Gpus, parseGpus } from './resources.js';
import { type Polling, Routed, ShardRouter } from './router.js';
import { type Served, type ServeProtocol, serveProcessor } from './serve.js';

export interface DeploymentOptions {
  /** YAML config or executor class name, as `marie executor --uses` takes it. */
  uses: string;
  usesWith?: Record<string, unknown>;
  usesMetas?: Record<string, unknown>;
  /** Modules defining the class when `uses` is a class name. */
  pyModules?: string[];
  /** Deployment name: routes carry it, parameters are scoped by it. */
  name?: string;
  replicas?: number;
  shards?: number;
  polling?: Polling;
  env?: Record<string, string>;
  /** How long each replica may take to print `ready`; 60 s unless given. */
  timeoutReadyMs?: number;
  /** Attempts on other replicas after an UNAVAILABLE answer; 3 unless given. */
  retries?: number;
  /** SIGTERM-to-SIGKILL grace at close; 10 s unless given. */
  graceMs?: number;
  cwd?: string;
  /** Serve the deployment on its own address (a gateway in front of it): protocol(s) and port(s). */
  protocol?: ServeProtocol | ServeProtocol[];
  port?: number | number[];
  host?: string;
  /** Error names after which a replica answers, then exits, and is restarted (a GPU fault, say). */
  exitOnExceptions?: string[];
  /** Joined requests: the executor's `docs` keeps every incoming document (see `--no-reduce`). */
  noReduce?: boolean;
  /**
   * Prometheus metrics from every replica (Jina's `monitoring`): `GET /metrics` on
   * `portMonitoring` + the replica's index (0, or none given: free ports), listed by
   * `monitoringAddresses()`.
   */
  monitoring?: boolean;
  portMonitoring?: number;
  /** OpenTelemetry traces from every replica, exported over OTLP to host:port (Jina's `tracing`). */
  tracing?: boolean;
  tracesExporterHost?: string;
  tracesExporterPort?: number;
  /** Replicas reload their executor when its modules or YAML change (`marie executor --reload`). */
  reload?: boolean;
  /**
   * GPUs (Jina's `gpus`): `all`, a count, or device ids (`device=0,1`). Each replica gets
   * `CUDA_VISIBLE_DEVICES`: listed devices spread one per replica, round robin; a count, the first
   * that many; `all`, every device.
   */
  gpus?: Gpus | string | number | (string | number)[];
  logger?: Logger;
}

/**
 * One executor scaled out: `replicas` × `shards` `marie executor` processes, supervised here.
 * Each request goes to one replica of a shard (least in flight, round robin on ties); a replica
 * that dies is restarted with backoff, and a request it dropped is retried on another replica.
 * Shards are polled ANY (one shard) or ALL (every shard, answers reduced by document id).
 */
export class Deployment extends Routed implements AsyncDisposable {
  readonly name: string;
  readonly options: DeploymentOptions;
  /** shards[shardId][replicaId] */
  readonly shards: Replica[][] = [];
  readonly #logger: Logger;
  #closing?: Promise<void>;
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  readonly #gpus: Gpus | undefined;
  /** Where the deployment is served when `port` or `protocol` is given: `grpc://host:port` each. */
  readonly addresses: string[] = [];
  #served?: Served;

  constructor(options: DeploymentOptions) {
    super();
    this.options = options;
    this.name = options.name ?? 'executor';
    this.#logger = options.logger ?? createLogger(`deployment ${this.name}`);
    this.#gpus =
      options.gpus === undefined
        ? undefined
        : typeof options.gpus === 'object' && !Array.isArray(options.gpus)
          ? options.gpus
          : parseGpus(options.gpus, `${this.name}.gpus`);
    const replicas = options.replicas ?? 1;
    const shards = options.shards ?? 1;
    for (const [what, n] of [
      ['replicas', replicas],
      ['shards', shards],
    ] as const) {
      if (!Number.isInteger(n) || n < 1)
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `${what} must be a positive integer, got ${n}`,
        );
    }
    for (let s = 0; s < shards; s++) {
      const row: Replica[] = [];
      for (let r = 0; r < replicas; r++) row.push(this.#replica(s, r, shards, replicas));
      this.shards.push(row);
    }
    this.router = new ShardRouter(this.name, this.shards, {
      logger: this.#logger,
      ...(options.polling ? { polling: options.polling } : {}),
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
  }

  /**
   * A Deployment from YAML: `jtype: Deployment` with `with: { uses, replicas, shards, polling,
   * port, protocol, ... }`, or any executor config (`jtype: MyExecutor`), which it then deploys.
   */
  static async fromConfig(
    path: string,
    overrides: Partial<DeploymentOptions> = {},
  ): Promise<Deployment> {
    const { value, file } = await readYamlFile(path);
    const raw = substituteVariables(value, {
      env: process.env,
      context: {},
      source: path,
      warn: () => {},
    });
    if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping`);
    if (raw.jtype !== 'Deployment')
      return new Deployment({ uses: file, cwd: dirname(file), ...overrides });
    const w = isPlainObject(raw.with) ? raw.with : {};
    const options: Record<string, unknown> = { cwd: dirname(file) };
    for (const [key, value] of Object.entries(w))
      options[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
    if (typeof options.uses !== 'string')
      throw new ConfigError(`${path}: with.uses must name an executor config or class`);
    return new Deployment({ ...(options as unknown as DeploymentOptions), ...overrides });
  }

  #replica(shardId: number, replicaId: number, shards: number, replicas: number): Replica {
    const o = this.options;
    const index = shardId * replicas + replicaId;
    const devices = this.#gpus ? cudaVisibleDevices(this.#gpus, index) : undefined;
    const args = [
      'executor',
      '--uses',
      o.uses,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--name',
      this.name,
    ];
    args.push(
      '--shard-id',
      String(shardId),
      '--shards',
      String(shards),
      '--replica-id',
      String(replicaId),
      '--replicas',
      String(replicas),
    );
    if (o.usesWith) args.push('--uses-with', JSON.stringify(o.usesWith));
    if (o.usesMetas) args.push('--uses-metas', JSON.stringify(o.usesMetas));
    if (o.pyModules?.length) args.push('--py-modules', ...o.pyModules);
    if (o.exitOnExceptions?.length) args.push('--exit-on-exceptions', ...o.exitOnExceptions);
    if (o.noReduce) args.push('--no-reduce');
    if (o.monitoring) {
      args.push(
        '--monitoring',
        '--port-monitoring',
        String(o.portMonitoring ? o.portMonitoring + index : 0),
      );
    }
    if (o.tracing) {
      args.push('--tracing');
      if (o.tracesExporterHost) args.push('--traces-exporter-host', o.tracesExporterHost);
      if (o.tracesExporterPort) args.push('--traces-exporter-port', String(o.tracesExporterPort));
    }
    if (o.reload) args.push('--reload');
    return new Replica(
      {
        args,
        // A Flow's API keys guard its gateway; its replicas listen on loopback, reached only by
        // it, and take keys only when their entry's env gives them some.
        env: {
          ...process.env,
          MARIE_API_KEYS: undefined,
          ...(devices === undefined ? {} : { CUDA_VISIBLE_DEVICES: devices }),
          ...o.env,
        },
        cwd: o.cwd ?? process.cwd(),
        timeoutReadyMs: o.timeoutReadyMs ?? 60_000,
        logger: this.#logger,
        label: `${this.name}/shard-${shardId}/replica-${replicaId}`,
      },
      (replica, code, signal) => this.#restart(replica, code, signal),
    );
  }

  /** Starts every replica and resolves once all are ready; on failure stops those that started. */
  async start(): Promise<this> {
    try {
      await Promise.all(this.shards.flat().map((r) => r.start()));
      const o = this.options;
      if (o.port !== undefined || o.protocol !== undefined) {
        const gateway = new Gateway([{ name: this.name, needs: ['gateway'], target: this }], {
          endpoints: await this.endpoints(),
          logger: this.#logger,
        });
        this.#served = await serveProcessor(gateway, {
          ...(o.protocol ? { protocol: o.protocol } : {}),
          ...(o.port !== undefined ? { port: o.port } : {}),
          ...(o.host ? { host: o.host } : {}),
        });
        this.addresses.push(...this.#served.addresses);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  #restart(replica: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closing) return;
    const delay = Math.min(5000, 100 * 2 ** replica.restarts);
    replica.restarts++;
    // A runtime that stopped itself (a lost GPU) left a fault marker saying why: Marie writes it
    // and nobody reads it; here the supervisor does, and removes it once the replica is back.
    const pid = replica.pid; // the exited child's: `child` is replaced only by the next start
    const markers = pid === undefined ? [] : findFaultMarkers(pid, faultDir(replica.spec.env));
    for (const { marker } of markers)
      this.#logger.error(
        { fault: marker },
        `${replica.spec.label} stopped itself: ${marker.reason} (fail streak ${marker.fail_streak}, ${marker.total_failures} failures)`,
      );
    this.#logger.warn(
      `${replica.spec.label} exited (${signal ?? code}); restarting in ${delay} ms`,
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (this.#closing) return;
      replica.start().then(
        () => {
          for (const { file } of markers) removeFaultMarker(file);
          this.#logger.info(`${replica.spec.label} is back (pid ${replica.pid})`);
        },
        (err: unknown) => this.#logger.error({ err }, `${replica.spec.label} did not come back`),
      );
    }, delay);
    this.#restartTimers.add(timer);
  }

  /** Each replica's `GET /metrics` address (with `monitoring`), labelled `name/shard-s/replica-r`. */
  monitoringAddresses(): { label: string; address: string }[] {
    return this.shards
      .flat()
      .flatMap((r) => (r.monitoring ? [{ label: r.spec.label, address: r.monitoring }] : []));
  }

  /** Process ids by shard, for supervision tools and tests. */
  pids(): (number | undefined)[][] {
    return this.shards.map((row) => row.map((r) => r.pid));
  }

  /** Stops every replica: SIGTERM, then SIGKILL after the grace period. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.router.close();
      for (const t of this.#restartTimers) clearTimeout(t);
      await this.#served?.shutdown();
      await Promise.all(this.shards.flat().map((r) => r.stop(this.options.graceMs ?? 10_000)));
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
