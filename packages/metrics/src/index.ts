// @marie/metrics: Prometheus metrics under Jina's names, on prom-client.
export { Metrics, type MetricsOptions } from './metrics.js';
