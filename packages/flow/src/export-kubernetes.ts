import { ConfigError } from '@marie/core';
import {
  CONTAINER_PORT,
  type ExportOptions,
  type ExportPlan,
  gatewayArgs,
  isSecretName,
  type PlannedContainer,
  PRE_STOP_SECONDS,
  planExport,
  RUN_AS,
  WORKSPACE,
  withGateway,
} from './export.js';
import { envLines } from './export-stack.js';
import type { Flow } from './flow.js';

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
