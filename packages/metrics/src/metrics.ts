import { createServer, type Server } from 'node:http';
import {
  collectMetricSources,
  type DataRequest,
  DelegatingProcessor,
  type HandleOptions,
  type MetricFamily,
  type Processor,
  type SingleDocumentRequest,
  StatusCode,
} from '@marie/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry, Summary } from 'prom-client';

export interface MetricsOptions {
  /** Jina's `runtime_name` label: the executor's (or gateway's) name. */
  runtimeName: string;
  /** Where the metrics live (a fresh Registry unless given). */
  registry?: Registry;
  /** Node's process metrics (CPU, memory, event loop lag, GC) too (true). */
  processMetrics?: boolean;
}

/**
 * Prometheus metrics under Jina's names (`jina_*`) for one runtime: `instrument(processor)` wraps
 * what a server serves (an executor's RequestHandler, a Flow's gateway), `hop(...)` times a
 * gateway's calls to its executors, `serve({ port })` answers `GET /metrics`.
 *
 * - `jina_receiving_request_seconds` (summary; runtime_name): a request, received to answered
 * - `jina_process_request_seconds` (summary; executor, executor_endpoint, runtime_name): the
 *   executor's work on it (executors only)
 * - `jina_sending_request_seconds` (summary; runtime_name, deployment): a gateway's hop
 * - `jina_successful_requests_total`, `jina_failed_requests_total` (counters; runtime_name; the
 *   `_total` as Python's prometheus_client writes Jina's counters)
 * - `jina_number_of_pending_requests` (gauge; runtime_name)
 * - `jina_document_processed_total` (counter; executor, executor_endpoint, runtime_name): documents
 *   answered
 * - `marie_dynamic_batching_batch_size` (histogram) and `marie_dynamic_batching_queue_size` (gauge;
 *   executor, executor_endpoint, runtime_name): batches sent to a method, documents waiting
 * - whatever the process's metric sources report (`registerMetricSource` of @marie/core): GPU
 *   readings, Postgres pools, event spools, job queues, each under its package's `marie_*` names
 */
export class Metrics {
  readonly registry: Registry;
  readonly runtimeName: string;
  readonly #receiving: Summary<'runtime_name'>;
  readonly #process: Summary<'executor' | 'executor_endpoint' | 'runtime_name'>;
  readonly #sending: Summary<'runtime_name' | 'deployment'>;
  readonly #ok: Counter<'runtime_name'>;
  readonly #failed: Counter<'runtime_name'>;
  readonly #pending: Gauge<'runtime_name'>;
  readonly #docs: Counter<'executor' | 'executor_endpoint' | 'runtime_name'>;
  readonly #batchSize: Histogram<'executor' | 'executor_endpoint' | 'runtime_name'>;
  /** Metrics made for the families of metric sources, by name. */
  readonly #sourced = new Map<string, Gauge<string> | Counter<string>>();
  readonly #queues = new Set<Processor>();

  constructor(options: MetricsOptions) {
    this.registry = options.registry ?? new Registry();
    this.runtimeName = options.runtimeName;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const quantiles = { percentiles: [0.5, 0.9, 0.99], maxAgeSeconds: 600, ageBuckets: 5 };
    this.#receiving = new Summary({
      name: 'jina_receiving_request_seconds',
      help: 'Time spent processing a request, from receiving it to answering it',
      labelNames: ['runtime_name'],
      registers,
      ...quantiles,
    });
    this.#process = new Summary({
      name: 'jina_process_request_seconds',
      help: "Time the executor's method spent on a request",
      labelNames: ['executor', 'executor_endpoint', 'runtime_name'],
      registers,
      ...quantiles,
    });
    this.#sending = new Summary({
      name: 'jina_sending_request_seconds',
      help: 'Time a gateway spent sending a request to an executor and receiving its answer',
      labelNames: ['runtime_name', 'deployment'],
      registers,
      ...quantiles,
    });
    this.#ok = new Counter({
      name: 'jina_successful_requests_total',
      help: 'Requests answered without an error',
      labelNames: ['runtime_name'],
      registers,
    });
    this.#failed = new Counter({
      name: 'jina_failed_requests_total',
      help: 'Requests answered with an error',
      labelNames: ['runtime_name'],
      registers,
    });
    this.#pending = new Gauge({
      name: 'jina_number_of_pending_requests',
      help: 'Requests received and not yet answered',
      labelNames: ['runtime_name'],
      registers,
    });
    this.#docs = new Counter({
      name: 'jina_document_processed_total',
      help: 'Documents answered',
      labelNames: ['executor', 'executor_endpoint', 'runtime_name'],
      registers,
    });
    this.#batchSize = new Histogram({
      name: 'marie_dynamic_batching_batch_size',
      help: 'Documents per batch that dynamic batching sent to a method',
      labelNames: ['executor', 'executor_endpoint', 'runtime_name'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    const queues = this.#queues;
    const runtimeName = this.runtimeName;
    // Read at each scrape: the documents waiting in every instrumented processor's queues.
    new Gauge({
      name: 'marie_dynamic_batching_queue_size',
      help: 'Documents waiting in dynamic batching queues',
      labelNames: ['executor', 'executor_endpoint', 'runtime_name'],
      registers,
      collect() {
        this.reset();
        for (const p of queues)
          for (const q of p.batchQueues?.() ?? [])
            this.set(
              { executor: p.kind, executor_endpoint: q.endpoint, runtime_name: runtimeName },
              q.documents,
            );
      },
    });
    // Zero series from the start, so that a rate() over them has a beginning.
    for (const c of [this.#ok, this.#failed]) c.inc({ runtime_name: this.runtimeName }, 0);
    this.#pending.set({ runtime_name: this.runtimeName }, 0);
  }

  /**
   * The processor, measured: every request it handles (one at a time, joined, or streamed) is
   * counted and timed under this runtime's name. Everything else is the processor's own.
   */
  instrument(processor: Processor): Processor {
    const runtime = { runtime_name: this.runtimeName };
    const executor = processor.kind === 'Gateway' ? undefined : processor.kind;
    if (processor.onBatch && processor.batchQueues) {
      this.#queues.add(processor);
      processor.onBatch((e) =>
        this.#batchSize.observe(
          { executor: processor.kind, executor_endpoint: e.endpoint, ...runtime },
          e.size,
        ),
      );
    }
    const measure = async (endpoint: string | undefined, run: () => Promise<DataRequest<any>>) => {
      this.#pending.inc(runtime);
      const stop = this.#receiving.startTimer(runtime);
      const labels = {
        executor: executor ?? '',
        executor_endpoint: endpoint ?? '/default',
        ...runtime,
      };
      const work = executor ? this.#process.startTimer(labels) : undefined;
      try {
        const res = await run();
        work?.();
        if (res.header.status?.code === StatusCode.ERROR) this.#failed.inc(runtime);
        else {
          this.#ok.inc(runtime);
          if (executor && Array.isArray(res.docs)) this.#docs.inc(labels, res.docs.length);
        }
        return res;
      } catch (err) {
        this.#failed.inc(runtime);
        throw err;
      } finally {
        stop();
        this.#pending.dec(runtime);
      }
    };
    return new Measured(processor, measure, (req, options) =>
      this.#stream(processor, req, options),
    );
  }

  async *#stream(
    processor: Processor,
    req: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    const runtime = { runtime_name: this.runtimeName };
    this.#pending.inc(runtime);
    const stop = this.#receiving.startTimer(runtime);
    let failed = false;
    try {
      for await (const part of processor.streamDoc(req, options)) {
        if (part.header.status?.code === StatusCode.ERROR) failed = true;
        yield part;
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      (failed ? this.#failed : this.#ok).inc(runtime);
      stop();
      this.#pending.dec(runtime);
    }
  }

  /** Times one call of a gateway to an executor (`deployment`: the executor's name in the Flow). */
  hop(deployment: string): () => void {
    const stop = this.#sending.startTimer({ runtime_name: this.runtimeName, deployment });
    return () => void stop();
  }

  /** The metrics in Prometheus's text format (metric sources read now). */
  async text(): Promise<string> {
    this.#record(await collectMetricSources());
    return this.registry.metrics();
  }

  /** Sets the metrics of the sources' families, making one the first time a name is seen. */
  #record(families: MetricFamily[]): void {
    const seen = new Set<string>();
    for (const f of families) {
      seen.add(f.name);
      let metric = this.#sourced.get(f.name);
      if (!metric) {
        const config = {
          name: f.name,
          help: f.help,
          labelNames: [...f.labelNames],
          registers: [this.registry],
        };
        metric = f.type === 'counter' ? new Counter(config) : new Gauge(config);
        this.#sourced.set(f.name, metric);
      }
      // A source reports totals, not increments: the series are set to what it says now.
      metric.reset();
      for (const sample of f.samples) {
        const labels = sample.labels ?? {};
        if (metric instanceof Counter) metric.inc(labels, Math.max(0, sample.value));
        else metric.set(labels, sample.value);
      }
    }
    // A source gone (a pool closed): its series go too.
    for (const [name, metric] of this.#sourced) if (!seen.has(name)) metric.reset();
  }

  /** `GET /metrics` on its own port (Jina's `--port-monitoring`); 0 picks a free one. */
  async serve(options: { host?: string; port?: number } = {}): Promise<{
    port: number;
    close: () => Promise<void>;
  }> {
    const server: Server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '0.0.0.0', () => resolve());
    });
    const address = server.address();
    return {
      port: typeof address === 'object' && address ? address.port : 0,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
}

type Measure = (
  endpoint: string | undefined,
  run: () => Promise<DataRequest<any>>,
) => Promise<DataRequest<any>>;

/** A processor whose requests are counted and timed (`Metrics.instrument`). */
class Measured extends DelegatingProcessor {
  readonly #measure: Measure;
  readonly #stream: Processor['streamDoc'];

  constructor(target: Processor, measure: Measure, stream: Processor['streamDoc']) {
    super(target);
    this.#measure = measure;
    this.#stream = stream;
  }

  override handle(req: DataRequest<any>, options?: HandleOptions): Promise<DataRequest<any>> {
    return this.#measure(req.header.execEndpoint, () => this.target.handle(req, options));
  }

  override handleMany(
    reqs: readonly DataRequest<any>[],
    options?: HandleOptions,
  ): Promise<DataRequest<any>> {
    return this.#measure(reqs[0]?.header.execEndpoint, () => this.target.handleMany(reqs, options));
  }

  override streamDoc(
    req: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    return this.#stream(req, options);
  }
}
