import { ConfigError } from '@marie/core';
import { isPlainObject } from '@marie/docs';

/**
 * An executor's GPUs as Jina writes them: `all`, a count (`2`), or device ids (`device=0,1`, a
 * list `[0, 1]`, or `0,1`).
 */
export type Gpus =
  | { kind: 'all' }
  | { kind: 'count'; count: number }
  | { kind: 'devices'; ids: string[] };

export function parseGpus(raw: unknown, where: string): Gpus {
  if (raw === 'all') return { kind: 'all' };
  if (typeof raw === 'number' || (typeof raw === 'string' && /^\d+$/.test(raw.trim()))) {
    const count = Number(raw);
    if (!Number.isInteger(count) || count < 1)
      throw new ConfigError(`${where}: ${JSON.stringify(raw)} is not a number of GPUs (1 or more)`);
    return { kind: 'count', count };
  }
  const list = Array.isArray(raw)
    ? raw.map(String)
    : typeof raw === 'string'
      ? raw
          .trim()
          .replace(/^device=/, '')
          .split(',')
          .map((s) => s.trim())
      : undefined;
  if (
    !list ||
    list.length === 0 ||
    list.some((id) => !/^([0-9]+|GPU-[0-9a-fA-F-]+|MIG-[\w/-]+)$/.test(id))
  )
    throw new ConfigError(
      `${where}: ${JSON.stringify(raw)} is not all, a count, or device ids (device=0,1)`,
    );
  return { kind: 'devices', ids: list };
}

/**
 * `CUDA_VISIBLE_DEVICES` of replica `index` (across shards) when run here, as Jina spreads
 * replicas: listed devices one per replica, round robin; a count, the first that many devices
 * (each replica sees them); `all`, nothing set (every device visible).
 */
export function cudaVisibleDevices(gpus: Gpus, index: number): string | undefined {
  if (gpus.kind === 'devices') return gpus.ids[index % gpus.ids.length];
  if (gpus.kind === 'count') return Array.from({ length: gpus.count }, (_, i) => i).join(',');
  return undefined;
}

/** CPU and memory as Kubernetes writes them: `cpu: 500m | 2 | "1.5"`, `memory: 512Mi | 4Gi`. */
export interface ResourceAmounts {
  cpu?: string;
  memory?: string;
}

export interface Resources {
  requests?: ResourceAmounts;
  limits?: ResourceAmounts;
}

const CPU = /^(\d+(\.\d+)?|\d+m)$/;
const MEMORY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T|k)?$/;

/** `resources: { requests: { cpu, memory }, limits: { cpu, memory } }`, checked; errors name the key. */
export function parseResources(raw: unknown, where: string): Resources {
  if (!isPlainObject(raw))
    throw new ConfigError(
      `${where}: expected { requests: { cpu, memory }, limits: { cpu, memory } }`,
    );
  const out: Resources = {};
  for (const [part, amounts] of Object.entries(raw)) {
    if (part !== 'requests' && part !== 'limits')
      throw new ConfigError(`${where}.${part}: unknown key (requests, limits)`);
    if (!isPlainObject(amounts))
      throw new ConfigError(`${where}.${part}: expected { cpu, memory }`);
    const a: ResourceAmounts = {};
    for (const [k, v] of Object.entries(amounts)) {
      const text = String(v);
      if (k === 'cpu') {
        if (!CPU.test(text))
          throw new ConfigError(
            `${where}.${part}.cpu: ${JSON.stringify(v)} is not CPUs (2, 0.5, 500m)`,
          );
        a.cpu = text;
      } else if (k === 'memory') {
        if (!MEMORY.test(text))
          throw new ConfigError(
            `${where}.${part}.memory: ${JSON.stringify(v)} is not an amount of memory (512Mi, 4Gi)`,
          );
        a.memory = text;
      } else throw new ConfigError(`${where}.${part}.${k}: unknown key (cpu, memory)`);
    }
    out[part] = a;
  }
  return out;
}

/** Kubernetes CPU (`500m`, `2`) as docker's decimal CPUs (`0.5`, `2`). */
export function dockerCpus(cpu: string): string {
  return cpu.endsWith('m') ? String(Number(cpu.slice(0, -1)) / 1000) : String(Number(cpu));
}

/** Kubernetes memory (`512Mi`, `4Gi`, `1G`) as docker's (`512m`, `4g`, bytes for decimal units). */
export function dockerMemory(memory: string): string {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$/.exec(memory)!;
  const n = Number(m[1]);
  const binary: Record<string, string> = { Ki: 'k', Mi: 'm', Gi: 'g', Ti: 't' };
  const decimal: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const unit = m[2];
  if (unit === undefined) return String(Math.round(n));
  if (binary[unit] && Number.isInteger(n)) return `${n}${binary[unit]}`;
  const bytes = binary[unit]
    ? n * 1024 ** (['Ki', 'Mi', 'Gi', 'Ti'].indexOf(unit) + 1)
    : n * decimal[unit]!;
  return String(Math.round(bytes));
}

/**
 * A HorizontalPodAutoscaler's bounds and target: CPU utilization (percent of the requested CPU:
 * needs `resources.requests.cpu` and metrics-server) or pending requests per pod (Jina's
 * `jina_number_of_pending_requests`: needs Prometheus and a custom-metrics adapter).
 */
export interface Autoscale {
  minReplicas: number;
  maxReplicas: number;
  cpu?: number;
  pendingRequests?: number;
}

export function parseAutoscale(raw: unknown, where: string): Autoscale {
  if (!isPlainObject(raw))
    throw new ConfigError(
      `${where}: expected { min_replicas, max_replicas, target_cpu_utilization | target_pending_requests }`,
    );
  const KEYS: Record<string, keyof Autoscale> = {
    min_replicas: 'minReplicas',
    max_replicas: 'maxReplicas',
    target_cpu_utilization: 'cpu',
    target_pending_requests: 'pendingRequests',
  };
  const out: Partial<Autoscale> = {};
  for (const [k, v] of Object.entries(raw)) {
    const field = KEYS[k];
    if (!field)
      throw new ConfigError(`${where}.${k}: unknown key (${Object.keys(KEYS).join(', ')})`);
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || (field === 'cpu' && n > 100))
      throw new ConfigError(
        `${where}.${k}: ${JSON.stringify(v)} is not ${field === 'cpu' ? 'a percentage (1-100)' : 'a positive whole number'}`,
      );
    out[field] = n;
  }
  if (out.maxReplicas === undefined)
    throw new ConfigError(`${where}.max_replicas: the autoscaler needs an upper bound`);
  out.minReplicas ??= 1;
  if (out.minReplicas > out.maxReplicas)
    throw new ConfigError(
      `${where}: min_replicas ${out.minReplicas} > max_replicas ${out.maxReplicas}`,
    );
  if (out.cpu === undefined && out.pendingRequests === undefined) out.cpu = 70;
  return out as Autoscale;
}
