import { createRequire } from 'node:module';
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { ConfigError, envReferences, LIMITS } from '@marie/core';
import type { Flow, FlowExecutor } from './flow.js';
import type { FlowGraph } from './graph.js';
import { type Autoscale, type Gpus, parseGpus, type Resources } from './resources.js';

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };

/** The port every executor container listens on (gRPC). */
export const CONTAINER_PORT = 8080;
/** Where a container serves `GET /metrics` when monitoring is on. */
export const METRICS_PORT = 9090;
/** Where a container writes (a volume: the root filesystem is read-only). */
export const WORKSPACE = '/workspace';
/** The user every container runs as (the images' `nonroot`). */
export const RUN_AS = 65532;
/** Seconds a pod waits after it is told to stop, before SIGTERM: endpoints stop sending to it. */
export const PRE_STOP_SECONDS = 5;

export interface ExportOptions {
  /**
   * Image of the gateway and of every executor that names no image of its own: `marie` as its
   * entrypoint and the Flow's directory at `flowDir` (the repository's Dockerfile builds one).
   */
  image?: string;
  /** Where the Flow's directory lies inside `image`; `/app/flow` unless given. */
  flowDir?: string;
  /** Kubernetes namespace of every object; none (kubectl's current one) unless given. */
  namespace?: string;
}

/** One container: an executor shard (or one replica of it) or the gateway. */
export interface PlannedContainer {
  /** DNS-safe service name. */
  service: string;
  image: string;
  /** Arguments after the image's entrypoint. */
  args: string[];
  env: Record<string, string>;
  /** Container ports by protocol, gRPC first for executors. */
  ports: { protocol: 'grpc' | 'http' | 'websocket'; port: number }[];
  /** How many copies of this container run (Kubernetes); compose plans one service per replica. */
  replicas: number;
  executor: string;
  shard?: number;
  /**
   * Environment variables its arguments and env reference (`${{ ENV.X }}`, kept as references by
   * the export), which a Secret, a ConfigMap or the env file provides: never inlined.
   */
  needs: string[];
  gpus?: Gpus;
  resources?: Resources;
  autoscale?: Autoscale;
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  /** Seconds from SIGTERM to a forced stop: the runtime's drain and a margin. */
  drainSeconds: number;
  /** `GET /metrics` port (with monitoring). */
  metricsPort?: number;
}

/** A variable an exported Flow needs from its environment, and whether it is a secret. */
export interface PlannedVariable {
  name: string;
  secret: boolean;
}

/** Names that hold credentials (or URLs, which often carry them): Secret rather than ConfigMap. */
export function isSecretName(name: string): boolean {
  return /PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|DSN|_URL$|_URI$|^DATABASE_URL$/i.test(name);
}

export interface ExportPlan {
  name: string;
  /** Per executor: its DNS-safe name and one container per shard. */
  executors: { name: string; base: string; shards: PlannedContainer[] }[];
  gateway: PlannedContainer;
  /**
   * With a `jobs:` section: `marie worker` containers running its queues through the gateway
   * (`jobs.workers` copies, 1 unless given); the gateway then serves the job API and /ui only.
   */
  worker?: PlannedContainer;
  graph: FlowGraph;
  imagesToBuild: string[];
  /** Every variable some container needs, sorted by name. */
  variables: PlannedVariable[];
}

export const DEFAULT_IMAGE = `marie/runtime:${version}`;

const dnsName = (name: string, what: string) => {
  const n = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (!n || n.length > 50) throw new ConfigError(`${what}: "${name}" cannot be a DNS name`);
  return n;
};

/** A path of the Flow's directory as the container sees it; outside it, an error. */
function inImage(path: string, e: FlowExecutor, flowDir: string, hostDir: string): string {
  const rel = relative(hostDir, resolve(e.cwd ?? hostDir, path));
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new ConfigError(
      `${e.name}: ${path} lies outside the Flow's directory (${hostDir}); give the executor an image`,
    );
  return posix.join(flowDir, rel.split(sep).join('/'));
}

function executorArgs(e: FlowExecutor, flowDir: string, hostDir: string): string[] {
  const uses = e.uses ?? '';
  const args = uses.startsWith('docker://')
    ? [] // the image's entrypoint is `marie executor --uses ...`; runtime flags follow
    : ['executor', '--uses', /\.ya?ml$/i.test(uses) ? inImage(uses, e, flowDir, hostDir) : uses];
  args.push('--name', e.name, '--host', '0.0.0.0', '--port', String(CONTAINER_PORT));
  if (e.pyModules?.length)
    args.push('--py-modules', ...e.pyModules.map((m) => inImage(m, e, flowDir, hostDir)));
  if (e.usesWith) args.push('--uses-with', JSON.stringify(e.usesWith));
  if (e.usesMetas) args.push('--uses-metas', JSON.stringify(e.usesMetas));
  if (e.exitOnExceptions?.length) args.push('--exit-on-exceptions', ...e.exitOnExceptions);
  if (e.noReduce) args.push('--no-reduce');
  return args;
}

/** Jina's monitoring and tracing flags for a container, as the Flow (or executor) asks. */
function operationsArgs(
  o: {
    monitoring?: boolean | undefined;
    tracing?: boolean | undefined;
    tracesExporterHost?: string | undefined;
    tracesExporterPort?: number | undefined;
  },
  monitor: boolean,
): string[] {
  const args: string[] = [];
  if (monitor) args.push('--monitoring', '--port-monitoring', String(METRICS_PORT));
  if (o.tracing) {
    args.push('--tracing');
    if (o.tracesExporterHost) args.push('--traces-exporter-host', o.tracesExporterHost);
    if (o.tracesExporterPort) args.push('--traces-exporter-port', String(o.tracesExporterPort));
  }
  return args;
}

/** The limits a Flow's `with:` gave, as the gateway's flags. */
function limitArgs(flow: Flow): string[] {
  const l = flow.options.limits;
  if (!l) return [];
  return LIMITS.flatMap(({ key, flag }) => (l[key] === undefined ? [] : [flag, String(l[key])]));
}

/**
 * What runs where when a Flow becomes containers: each executor shard as its own service
 * (`name`, or `name-0`, `name-1`... when sharded) listening on 8080, and a gateway container
 * running `marie gateway` with the graph and every shard's address.
 */
export function planExport(flow: Flow, options: ExportOptions = {}): ExportPlan {
  const image = options.image ?? DEFAULT_IMAGE;
  const flowDir = options.flowDir ?? '/app/flow';
  const executors: ExportPlan['executors'] = [];
  const graph = flow.graph();
  const hostDir = flow.executors[0]?.cwd ?? process.cwd();
  const taken = new Set(['gateway']);
  let usesDefault = false;
  for (const e of flow.executors) {
    if (e.external) continue;
    const base = dnsName(e.name, 'executor name');
    const shards = e.shards ?? 1;
    const own = e.uses?.startsWith('docker://') ? e.uses.slice('docker://'.length) : e.image;
    usesDefault ||= own === undefined;
    // Monitoring when the Flow or the executor asks, or when its autoscaler reads pending requests.
    const monitor =
      (e.monitoring ?? flow.options.monitoring ?? false) ||
      e.autoscale?.pendingRequests !== undefined;
    const args = [
      ...executorArgs(e, flowDir, hostDir),
      ...operationsArgs(
        {
          monitoring: monitor,
          tracing: e.tracing ?? flow.options.tracing,
          tracesExporterHost: e.tracesExporterHost ?? flow.options.tracesExporterHost,
          tracesExporterPort: e.tracesExporterPort ?? flow.options.tracesExporterPort,
        },
        monitor,
      ),
    ];
    const env = { ...e.env };
    const gpus =
      e.gpus === undefined
        ? undefined
        : typeof e.gpus === 'object' && !Array.isArray(e.gpus)
          ? e.gpus
          : parseGpus(e.gpus, `${e.name}.gpus`);
    const planned: PlannedContainer[] = [];
    for (let s = 0; s < shards; s++) {
      const service = shards === 1 ? base : `${base}-${s}`;
      if (taken.has(service))
        throw new ConfigError(`${e.name}: service name "${service}" is taken; rename it`);
      taken.add(service);
      planned.push({
        service,
        image: own ?? image,
        args: shards === 1 ? args : [...args, '--shard-id', String(s), '--shards', String(shards)],
        env,
        ports: [{ protocol: 'grpc', port: CONTAINER_PORT }],
        replicas: e.replicas ?? 1,
        executor: e.name,
        ...(shards === 1 ? {} : { shard: s }),
        needs: envReferences([args, env]),
        ...(gpus ? { gpus } : {}),
        ...(e.resources ? { resources: e.resources } : {}),
        ...(e.autoscale ? { autoscale: e.autoscale } : {}),
        ...(e.nodeSelector ? { nodeSelector: e.nodeSelector } : {}),
        ...(e.tolerations ? { tolerations: e.tolerations } : {}),
        // `marie executor` drains for --grace-period (10 s) after SIGTERM.
        drainSeconds: 15,
        ...(monitor ? { metricsPort: METRICS_PORT } : {}),
      });
    }
    executors.push({ name: e.name, base, shards: planned });
  }
  const protocols = [flow.options.protocol ?? 'grpc'].flat();
  const ports = [flow.options.port ?? 0].flat();
  const gatewayPorts = protocols.map((protocol, i) => ({
    protocol,
    port: ports[i] || CONTAINER_PORT + i,
  }));
  const gatewayArgs = [
    'gateway',
    '--graph-description',
    JSON.stringify(graph.description),
    '--protocol',
    ...protocols,
    '--port',
    ...gatewayPorts.map((p) => String(p.port)),
  ];
  if (Object.keys(graph.conditions).length)
    gatewayArgs.push('--graph-conditions', JSON.stringify(graph.conditions));
  const polling = Object.fromEntries(
    flow.executors.filter((e) => e.polling).map((e) => [e.name, e.polling]),
  );
  if (Object.keys(polling).length)
    gatewayArgs.push('--deployments-polling', JSON.stringify(polling));
  if (flow.options.timeoutSendMs !== undefined)
    gatewayArgs.push('--timeout-send', String(flow.options.timeoutSendMs));
  gatewayArgs.push(
    ...limitArgs(flow),
    ...operationsArgs(flow.options, flow.options.monitoring === true),
  );
  const worker = flow.options.jobs
    ? planWorker(flow.options.jobs, gatewayArgs, gatewayPorts, image)
    : undefined;
  if (worker) usesDefault = true;
  // The gateway's API keys come from the Secret too (MARIE_API_KEYS), never from a file in args.
  const gatewayNeeds = envReferences(gatewayArgs);
  if (flow.options.apiKeys) gatewayNeeds.push('MARIE_API_KEYS');
  const gateway: PlannedContainer = {
    service: 'gateway',
    image,
    args: gatewayArgs,
    env: {},
    ports: gatewayPorts,
    replicas: 1,
    executor: 'gateway',
    needs: gatewayNeeds,
    ...(flow.options.resources ? { resources: flow.options.resources } : {}),
    drainSeconds: 15,
    ...(flow.options.monitoring ? { metricsPort: METRICS_PORT } : {}),
  };
  const all = [...executors.flatMap((e) => e.shards), gateway, ...(worker ? [worker] : [])];
  const variables = [...new Set(all.flatMap((c) => c.needs))]
    .sort()
    .map((name) => ({ name, secret: isSecretName(name) }));
  return {
    ...(worker ? { worker } : {}),
    name: dnsName(flow.options.name ?? 'marie-flow', 'flow name'),
    executors,
    graph,
    imagesToBuild: usesDefault ? [image] : [],
    gateway,
    variables,
  };
}

/**
 * The job section split in two: the gateway keeps the job API and /ui (`--jobs` without queues),
 * and a worker container takes the queues, running each job through the gateway (its gRPC port,
 * else HTTP) at the address `gatewayArgs` fills in per target (`{gateway}`).
 */
function planWorker(
  jobs: Record<string, unknown>,
  gatewayArgs: string[],
  gatewayPorts: PlannedContainer['ports'],
  image: string,
): PlannedContainer {
  const { queues, workers, ...api } = jobs;
  const replicas = workers === undefined ? 1 : Number(workers);
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new ConfigError(`jobs.workers: ${JSON.stringify(workers)} is not a number of workers`);
  if (!queues || (typeof queues === 'object' && Object.keys(queues).length === 0))
    throw new ConfigError(
      'jobs.queues: an exported Flow runs its jobs in workers; name the queues',
    );
  gatewayArgs.push('--jobs', JSON.stringify(api));
  const port =
    gatewayPorts.find((p) => p.protocol === 'grpc') ??
    gatewayPorts.find((p) => p.protocol === 'http')!;
  const args = [
    'worker',
    '--target',
    `${port.protocol}://{gateway}:${port.port}`,
    '--jobs',
    JSON.stringify({ ...api, queues }),
  ];
  return {
    service: 'worker',
    image,
    args,
    env: {},
    ports: [],
    replicas,
    executor: 'worker',
    needs: envReferences(args),
    // A worker lets its running jobs finish (marie worker --stop-timeout, 30 s).
    drainSeconds: 40,
  };
}

/** The gateway's arguments with each executor's addresses, as `address(container, replica)` names them. */
/** A worker's `--target` with the gateway's host name of a target (compose or Kubernetes). */
export function withGateway(c: PlannedContainer, host: string): PlannedContainer {
  return { ...c, args: c.args.map((a) => a.replace('{gateway}', host)) };
}

export function gatewayArgs(
  plan: ExportPlan,
  flow: Flow,
  address: (c: PlannedContainer) => string[],
): string[] {
  const addresses: Record<string, string | string[] | string[][]> = {};
  for (const e of plan.executors) addresses[e.name] = e.shards.map(address);
  for (const e of flow.executors)
    if (e.external && e.addresses !== undefined) addresses[e.name] = e.addresses;
  // Compose and Kubernetes name services differently, so the addresses are added per target.
  const [command, flag, description, ...rest] = plan.gateway.args;
  return [
    command!,
    flag!,
    description!,
    '--deployments-addresses',
    JSON.stringify(addresses),
    ...rest,
  ];
}
