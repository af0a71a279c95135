import { createLogger, type EndpointListing, type Logger, type Processor } from '@marie/core';
import { Deployment, type DeploymentOptions } from './deployment.js';
import { Gateway } from './gateway.js';
import { type GatewayProtocol, serveProcessor } from './serve.js';
import type { Condition } from './when.js';

export type { GatewayProtocol } from './serve.js';

export interface FlowOptions {
  /** Protocols the gateway serves; gRPC unless given. */
  protocol?: GatewayProtocol | GatewayProtocol[];
  /** One port per protocol; 0 (the default) picks free ones. */
  port?: number | number[];
  host?: string;
  /** Deadline of each hop, in milliseconds. */
  timeoutSendMs?: number;
  logger?: Logger;
}

export interface FlowExecutor extends Omit<DeploymentOptions, 'name'> {
  name: string;
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
  readonly deployments = new Map<string, Deployment>();
  /** `grpc://127.0.0.1:PORT` etc., one per protocol, once started. */
  readonly addresses: string[] = [];
  gateway?: Gateway;
  readonly #servers: { shutdown: () => Promise<void> }[] = [];
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

  async start(): Promise<this> {
    try {
      const nodes = [];
      let previous = 'gateway';
      for (const e of this.executors) {
        const { needs, when, floating, ...options } = e;
        this.deployments.set(e.name, new Deployment({ ...options, logger: this.#logger }));
        const node = {
          name: e.name,
          needs: needs === undefined ? [previous] : [needs].flat(),
          target: this.deployments.get(e.name)!,
        };
        nodes.push({ ...node, ...(when ? { when } : {}), ...(floating ? { floating } : {}) });
        if (!floating) previous = e.name;
      }
      new Gateway(nodes); // validates the graph before any process starts
      await Promise.all([...this.deployments.values()].map((d) => d.start()));
      this.gateway = new Gateway(nodes, {
        ...(this.options.timeoutSendMs === undefined
          ? {}
          : { timeoutSendMs: this.options.timeoutSendMs }),
        endpoints: await this.#endpoints(),
        logger: this.#logger,
      });
      await this.#serve(this.gateway);
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  /** The union of the executors' endpoints, schemas from the first executor listing each. */
  async #endpoints(): Promise<EndpointListing> {
    const out: EndpointListing = { endpoints: [], writeEndpoints: [], schemas: {} };
    for (const dep of this.deployments.values()) {
      const client = dep.shards[0]?.[0]?.client;
      if (!client) continue;
      const listing = await client.endpoints();
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
