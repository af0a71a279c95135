import {
  type ApiKeys,
  createLogger,
  type EndpointListing,
  ErrorCode,
  type Logger,
  MarieError,
  type Processor,
  type ServerLimits,
  type TlsServerOptions,
} from '@marie/core';
import type { HttpPlugin } from '@marie/transport-http';
import { Deployment, type DeploymentOptions } from './deployment.js';
import { Gateway } from './gateway.js';
import { describeGraph, type FlowGraph, graphNodes } from './graph.js';
import { RemoteDeployment } from './remote.js';
import type { Autoscale, Resources } from './resources.js';
import type { Polling } from './router.js';
import { type Served, type ServeProtocol, serveProcessor } from './serve.js';
import type { Condition } from './when.js';

export interface FlowOptions {
  /** Names the Flow's exported objects (compose project, Kubernetes labels); `marie-flow` unless given. */
  name?: string;
  /** Protocols the gateway serves; gRPC unless given. */
  protocol?: ServeProtocol | ServeProtocol[];
  /** One port per protocol; 0 (the default) picks free ones. */
  port?: number | number[];
  host?: string;
  /** Deadline of each hop, in milliseconds. */
  timeoutSendMs?: number;
  /** More routes on the gateway's HTTP server (the job API and `/ui` of @marie/jobs). */
  httpPlugins?: HttpPlugin[];
  /**
   * The YAML's `jobs:` section, as written (keys checked by @marie/jobs, which serves it: the
   * Flow itself only carries it).
   */
  jobs?: Record<string, unknown>;
  /**
   * Metrics (Jina's `monitoring`, `port_monitoring`): the gateway's on `portMonitoring` (served by
   * whoever runs the Flow: `marie flow`), and every executor's unless its entry says otherwise.
   */
  monitoring?: boolean;
  portMonitoring?: number;
  /** Traces (Jina's `tracing`, `traces_exporter_host`, `traces_exporter_port`), executors too. */
  tracing?: boolean;
  tracesExporterHost?: string;
  tracesExporterPort?: number;
  /** The gateway's TLS (grpcs, https, wss; Jina's `ssl_certfile`, `ssl_keyfile`), mutual with `clientCa`. */
  tls?: TlsServerOptions;
  /** Keys the gateway requires (`Authorization: Bearer`, gRPC metadata); health stays open. */
  apiKeys?: ApiKeys;
  /** The gateway's limits (request size, documents, tensor elements, timeout, concurrency). */
  limits?: Partial<ServerLimits>;
  /** For external executors at `grpcs://` addresses: the CA to trust, a client certificate. */
  executorTls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
  /** The external executors' API key, sent on every hop. */
  executorApiKey?: string;
  /** The exported gateway's CPU and memory requests and limits. */
  resources?: Resources;
  /** Wraps the gateway before it is served (metrics count what the servers hand it). */
  instrument?: (gateway: Processor) => Processor;
  /** Told of each hop's start; what it returns, of its end (the gateway's sending metrics). */
  observeHop?: (node: string) => () => void;
  logger?: Logger;
}

export interface FlowExecutor extends Omit<DeploymentOptions, 'name' | 'uses'> {
  name: string;
  /** YAML config or class name (see Deployment); not needed for an `external` executor. */
  uses?: string;
  /** Started by someone else (Jina's `external`): reached at `addresses`, not spawned. */
  external?: boolean;
  /** For `external`: replica addresses, or one list per shard (`grpc://host:port`). */
  addresses?: string | string[] | string[][];
  /** For an external executor at `grpcs://`: the CA to trust, a client certificate (PEM). */
  tls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
  /** For an external executor that requires one: its API key. */
  apiKey?: string;
  /** The container image `marie export` runs this executor from (see export). */
  image?: string;
  /** CPU and memory requests and limits of each exported container (Kubernetes' shape). */
  resources?: Resources;
  /** An exported executor's HorizontalPodAutoscaler (Kubernetes): bounds and target. */
  autoscale?: Autoscale;
  /** Kubernetes: where the executor's pods may run, and the taints they tolerate. */
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  /** Executors this one takes its input from: the previous one unless given; `gateway` is the client. */
  needs?: string | string[];
  when?: Condition;
  floating?: boolean;
}

/**
 * Executors chained into a graph behind one gateway: `new Flow().add({ name, uses }).add(...)`,
 * `await flow.start()`, then call `flow.addresses` with any Client. Each executor is a Deployment
 * (replicas, shards) supervised by this process.
 */
export class Flow implements AsyncDisposable {
  readonly options: FlowOptions;
  readonly executors: FlowExecutor[] = [];
  readonly deployments = new Map<string, Deployment | RemoteDeployment>();
  /** `grpc://127.0.0.1:PORT` etc., one per protocol, once started. */
  readonly addresses: string[] = [];
  gateway?: Gateway;
  readonly #servers: Served[] = [];
  readonly #logger: Logger;
  #closing?: Promise<void>;

  constructor(options: FlowOptions = {}) {
    this.options = options;
    this.#logger = options.logger ?? createLogger('flow');
  }

  add(executor: FlowExecutor): this {
    this.executors.push(executor);
    return this;
  }

  /**
   * A Flow of executors started elsewhere: the graph (as `describeGraph` writes it) and each
   * node's addresses. `marie gateway` runs this in a container next to the executors' containers.
   */
  static fromGraph(
    graph: FlowGraph,
    addresses: Record<string, string | string[] | string[][]>,
    options: FlowOptions & { polling?: Record<string, Polling>; timeoutReadyMs?: number } = {},
  ): Flow {
    const { polling, timeoutReadyMs, ...flowOptions } = options;
    const flow = new Flow(flowOptions);
    for (const node of graphNodes(graph)) {
      const at = addresses[node.name];
      if (at === undefined)
        throw new MarieError(ErrorCode.InvalidArgument, `no addresses for "${node.name}"`);
      const p = polling?.[node.name];
      flow.add({
        name: node.name,
        needs: node.needs,
        external: true,
        addresses: at,
        ...(node.when ? { when: node.when } : {}),
        ...(node.floating ? { floating: true } : {}),
        ...(p ? { polling: p } : {}),
        ...(timeoutReadyMs === undefined ? {} : { timeoutReadyMs }),
      });
    }
    for (const name of Object.keys(addresses))
      if (!flow.executors.some((e) => e.name === name))
        throw new MarieError(
          ErrorCode.InvalidArgument,
          `addresses for "${name}", not in the graph`,
        );
    return flow;
  }

  /** The topology: Jina's graph description and conditions. */
  graph(): FlowGraph {
    return describeGraph(this.executors);
  }

  async start(): Promise<this> {
    try {
      const nodes = graphNodes(this.graph()); // checks the graph before any process starts
      for (const e of this.executors) this.deployments.set(e.name, this.#deployment(e));
      await Promise.all([...this.deployments.values()].map((d) => d.start()));
      this.gateway = new Gateway(
        nodes.map((n) => ({ ...n, target: this.deployments.get(n.name)! })),
        {
          ...(this.options.timeoutSendMs === undefined
            ? {}
            : { timeoutSendMs: this.options.timeoutSendMs }),
          endpoints: await this.#endpoints(),
          logger: this.#logger,
          ...(this.options.observeHop ? { observeHop: this.options.observeHop } : {}),
        },
      );
      await this.#serve(this.options.instrument?.(this.gateway) ?? this.gateway);
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  #deployment(e: FlowExecutor): Deployment | RemoteDeployment {
    const {
      needs,
      when,
      floating,
      external,
      addresses,
      image,
      uses,
      tls,
      apiKey,
      resources,
      autoscale,
      nodeSelector,
      tolerations,
      ...options
    } = e;
    if (external) {
      if (addresses === undefined)
        throw new MarieError(ErrorCode.InvalidArgument, `${e.name}: external needs addresses`);
      const hopTls = tls ?? this.options.executorTls;
      const key = apiKey ?? this.options.executorApiKey;
      return new RemoteDeployment({
        name: e.name,
        addresses,
        logger: this.#logger,
        ...(hopTls ? { tls: hopTls } : {}),
        ...(key ? { apiKey: key } : {}),
        ...(options.polling ? { polling: options.polling } : {}),
        ...(options.retries === undefined ? {} : { retries: options.retries }),
        ...(options.timeoutReadyMs === undefined ? {} : { timeoutReadyMs: options.timeoutReadyMs }),
      });
    }
    if (uses === undefined)
      throw new MarieError(ErrorCode.InvalidArgument, `${e.name}: uses is missing`);
    if (uses.startsWith('docker://'))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `${e.name}: ${uses} runs only from an exported Flow (marie export compose|kubernetes)`,
      );
    const f = this.options;
    return new Deployment({
      // Executors inherit the Flow's monitoring and tracing unless their entry says otherwise.
      ...(f.monitoring ? { monitoring: true } : {}),
      ...(f.tracing
        ? {
            tracing: true,
            ...(f.tracesExporterHost ? { tracesExporterHost: f.tracesExporterHost } : {}),
            ...(f.tracesExporterPort ? { tracesExporterPort: f.tracesExporterPort } : {}),
          }
        : {}),
      ...options,
      uses,
      logger: this.#logger,
    });
  }

  /** Every local replica's `GET /metrics` address, with monitoring on. */
  monitoringAddresses(): { label: string; address: string }[] {
    return [...this.deployments.values()].flatMap((d) =>
      d instanceof Deployment ? d.monitoringAddresses() : [],
    );
  }

  /** The union of the executors' endpoints, schemas from the first executor listing each. */
  async #endpoints(): Promise<EndpointListing> {
    const out: EndpointListing = { endpoints: [], writeEndpoints: [], schemas: {} };
    for (const dep of this.deployments.values()) {
      const listing = await dep.endpoints();
      for (const e of listing.endpoints) if (!out.endpoints.includes(e)) out.endpoints.push(e);
      for (const [e, s] of Object.entries(listing.schemas ?? {}))
        out.schemas[e] ??= s as EndpointListing['schemas'][string];
    }
    return out;
  }

  async #serve(processor: Processor): Promise<void> {
    const served = await serveProcessor(processor, this.options);
    this.#servers.push(served);
    this.addresses.push(...served.addresses);
  }

  /** Stops the gateway (in-flight requests finish), then every deployment. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#servers.map((s) => s.shutdown()));
      await this.gateway?.close();
      await Promise.all([...this.deployments.values()].map((d) => d.close()));
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
