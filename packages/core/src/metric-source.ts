/**
 * A seam for numbers that packages below the metrics package keep (the GPU monitor's readings,
 * a Postgres pool, the event spools, job queues): each registers a source, and whoever exposes
 * metrics (@marie/metrics, prom-client) reads every source at each scrape. No metrics library is
 * imported below it, and a process that never scrapes pays nothing.
 */

export type MetricType = 'gauge' | 'counter';

export interface MetricSample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  /** Prometheus's naming: `marie_gpu_memory_used_bytes`, counters ending `_total`. */
  name: string;
  help: string;
  type: MetricType;
  /** Every label a sample of this family carries (fixed per family). */
  labelNames: readonly string[];
  samples: MetricSample[];
}

/** Reads the numbers now; may be async (a query to pg-boss's queue table). */
export type MetricSource = () => MetricFamily[] | Promise<MetricFamily[]>;

const sources = new Set<MetricSource>();

/** Makes a source's numbers part of every scrape in this process; returns its removal. */
export function registerMetricSource(source: MetricSource): () => void {
  sources.add(source);
  return () => {
    sources.delete(source);
  };
}

/**
 * Every registered source's families, those of the same name merged. A source that fails is left
 * out of this scrape (a metrics endpoint must answer even while a database is down).
 */
export async function collectMetricSources(): Promise<MetricFamily[]> {
  const byName = new Map<string, MetricFamily>();
  const read = await Promise.allSettled([...sources].map(async (source) => source()));
  for (const r of read) {
    if (r.status !== 'fulfilled') continue;
    for (const family of r.value) {
      const seen = byName.get(family.name);
      if (seen) seen.samples.push(...family.samples);
      else byName.set(family.name, { ...family, samples: [...family.samples] });
    }
  }
  return [...byName.values()];
}
