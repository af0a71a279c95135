import {
  createLogger,
  type DataRequest,
  DRY_RUN_ENDPOINT,
  type EndpointListing,
  ErrorCode,
  type HandleOptions,
  type Logger,
  MarieError,
  type Processor,
  type SingleDocumentRequest,
  SpanKind,
  StatusCode,
  traced,
  withLogContext,
} from '@marie/core';
import { withDocsRead } from '@marie/proto';
import { reduceAnswers } from './reduce-answers.js';
import type { SendOptions } from './router.js';
import { type Condition, matches, validateCondition } from './when.js';

/** Where a node sends its requests: a Deployment, or anything that answers the same way. */
export interface NodeTarget {
  send(req: DataRequest<any>, options?: SendOptions): Promise<DataRequest>;
  sendMany(reqs: DataRequest<any>[], options?: SendOptions): Promise<DataRequest>;
}

export interface GatewayNode {
  name: string;
  /** Nodes whose answers this one takes; `gateway` is the client's request. */
  needs: string[];
  /** Only documents matching this condition reach the node (Jina's `when`). */
  when?: Condition;
  /** Runs, but its answer never reaches the client. */
  floating?: boolean;
  target: NodeTarget;
}

export interface GatewayOptions {
  /** Deadline of each hop; DEADLINE_EXCEEDED (HTTP 504, WebSocket 1011) when passed. */
  timeoutSendMs?: number;
  endpoints?: EndpointListing;
  logger?: Logger;
  /** Told when a hop to a node starts; the function it returns when it ends (metrics). */
  observeHop?: (node: string) => () => void;
}

const GATEWAY = 'gateway';

/**
 * Walks a Flow's graph for each request: a node runs once every node it needs has answered,
 * joins (several needs) go to the executor as `docsMatrix`, floating nodes run on the side, and
 * the answers of the last nodes are merged by document id. An error answer stops the request
 * there. The gateway is a Processor: every transport serves it as it serves an executor.
 */
export class Gateway implements Processor {
  readonly name = GATEWAY;
  readonly kind = 'Gateway';
  /** Documents a hop does not look at cross the gateway still serialized, unread. */
  readonly passesDocsThrough = true;
  readonly #nodes: GatewayNode[];
  readonly #ends: GatewayNode[];
  readonly #options: GatewayOptions;
  readonly #logger: Logger;
  readonly #floating = new Set<Promise<unknown>>();
  /** Answers a node passed through untouched (targetExecutor skipped it): they lose merges. */
  readonly #passedThrough = new WeakSet<DataRequest>();

  constructor(nodes: GatewayNode[], options: GatewayOptions = {}) {
    const known = new Set([GATEWAY]);
    for (const node of nodes) {
      if (known.has(node.name)) throw new TypeError(`flow: two executors are named "${node.name}"`);
      for (const need of node.needs) {
        if (!known.has(need))
          throw new TypeError(`flow: "${node.name}" needs "${need}", which is not added before it`);
      }
      if (node.when) validateCondition(node.when, `${node.name}.when`);
      known.add(node.name);
    }
    const needed = new Set(nodes.flatMap((n) => n.needs));
    this.#nodes = nodes;
    this.#ends = nodes.filter((n) => !n.floating && !needed.has(n.name));
    if (nodes.length && this.#ends.length === 0)
      throw new TypeError('flow: every executor is floating; nothing would answer');
    this.#options = options;
    this.#logger = options.logger ?? createLogger(GATEWAY);
  }

  /**
   * Walks the graph for one request (Processor's contract): an executor's error answer is the
   * answer; a hop with no answer (nobody reachable, past its deadline, cancelled) or a request it
   * cannot route rejects with a MarieError saying which.
   */
  handle(request: DataRequest<any>, options: HandleOptions = {}): Promise<DataRequest<any>> {
    return withLogContext({ request_id: request.header.requestId }, () =>
      this.#handle(request, options),
    );
  }

  async #handle(request: DataRequest<any>, options: HandleOptions): Promise<DataRequest<any>> {
    const started = new Date();
    const target = request.header.targetExecutor
      ? targetPattern(request.header.targetExecutor)
      : undefined;
    const answers = new Map<string, Promise<DataRequest>>([[GATEWAY, Promise.resolve(request)]]);
    // The caller's signal (made only if the transport gave one) cancels every hop in flight.
    const signal = typeof options.signal === 'function' ? options.signal() : options.signal;
    for (const node of this.#nodes) {
      answers.set(
        node.name,
        this.#hop(
          node,
          Promise.all(node.needs.map((n) => answers.get(n)!)),
          target,
          node.floating ? undefined : signal, // a side effect outlives the caller
        ),
      );
    }
    for (const node of this.#nodes.filter((n) => n.floating)) {
      const side = answers
        .get(node.name)!
        .catch((err: unknown) => this.#logger.warn({ err }, `floating ${node.name} failed`));
      this.#floating.add(side);
      void side.finally(() => this.#floating.delete(side));
    }
    const ends = this.#ends.length
      ? await Promise.all(this.#ends.map((n) => answers.get(n.name)!))
      : [request];
    const failed = ends.find((a) => a.header.status?.code === StatusCode.ERROR);
    let answer: DataRequest;
    try {
      const merged = failed ?? (ends.length === 1 ? ends[0]! : this.#merge(ends));
      answer = options.docsBytes ? merged : withDocsRead(merged);
    } catch (err) {
      // The executors' answers could not be merged or read: no answer, and not the caller's fault.
      throw new MarieError(
        ErrorCode.Internal,
        `the executors' answers: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    return {
      ...answer,
      header: { ...answer.header, requestId: request.header.requestId },
      routes: [{ executor: GATEWAY, startTime: started, endTime: new Date() }, ...answer.routes],
    };
  }

  async #hop(
    node: GatewayNode,
    inputs: Promise<DataRequest[]>,
    target: RegExp | undefined,
    signal: AbortSignal | undefined,
  ): Promise<DataRequest> {
    const received = await inputs;
    const failed = received.find((a) => a.header.status?.code === StatusCode.ERROR);
    if (failed) return failed; // an error stops the request where it happened
    const timeout: SendOptions = {
      docsBytes: true,
      ...(signal ? { signal } : {}),
      ...(this.#options.timeoutSendMs === undefined
        ? {}
        : { timeoutMs: this.#options.timeoutSendMs }),
    };
    let filtered: DataRequest[];
    try {
      if (target !== undefined && !target.test(node.name)) {
        const through = received.length === 1 ? received[0]! : this.#merge(received);
        this.#passedThrough.add(through);
        return through;
      }
      filtered = node.when
        ? received.map(withDocsRead).map((r) => ({
            ...r,
            docs: (r.docs as object[]).filter((d) => matches(d, node.when!)),
          }))
        : received;
    } catch (err) {
      throw hopError(node, err);
    }
    if (node.when && filtered.every((r) => r.docs.length === 0)) return filtered[0]!;
    const done = this.#options.observeHop?.(node.name);
    try {
      // A client span per hop: its context travels to the executor in the call's metadata.
      return await traced(
        `hop ${node.name}`,
        { kind: SpanKind.CLIENT, attributes: { 'marie.deployment': node.name } },
        () =>
          filtered.length === 1
            ? node.target.send(filtered[0]!, timeout)
            : node.target.sendMany(filtered, timeout),
      );
    } catch (err) {
      throw hopError(node, err);
    } finally {
      done?.();
    }
  }

  /** Merges answers by document id; processed answers come first so that their fields win. */
  #merge(answers: DataRequest[]): DataRequest {
    const ordered = [...answers].sort(
      (a, b) => Number(this.#passedThrough.has(a)) - Number(this.#passedThrough.has(b)),
    );
    return reduceAnswers(
      ordered[0]!,
      ordered.map((value) => ({ status: 'fulfilled', value })),
    );
  }

  async handleMany(
    requests: readonly DataRequest<any>[],
    options?: HandleOptions,
  ): Promise<DataRequest<any>> {
    if (requests.length !== 1)
      throw new MarieError(ErrorCode.Unimplemented, 'a gateway takes one request at a time');
    return this.handle(requests[0]!, options);
  }

  async *streamDoc(
    request: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    const res = await this.handle({ ...request, docs: [request.document] }, options);
    if (res.header.status?.code === StatusCode.ERROR)
      yield { ...request, header: res.header, document: {} };
    else
      for (const document of res.docs as object[])
        yield {
          header: { requestId: request.header.requestId },
          parameters: res.parameters,
          routes: res.routes,
          document,
        };
  }

  endpoints(): EndpointListing {
    return (
      this.#options.endpoints ?? { endpoints: [DRY_RUN_ENDPOINT], writeEndpoints: [], schemas: {} }
    );
  }

  /** Waits for floating work still running. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#floating]);
  }

  close(): Promise<void> {
    return this.flush();
  }
}

/** A hop's failure as the MarieError the gateway rejects with, naming the node. */
function hopError(node: GatewayNode, err: unknown): MarieError {
  const e = MarieError.from(err);
  return new MarieError(e.code, `${node.name}: ${e.message}`, { cause: err });
}

/** `target_executor` as the regular expression it must be; a client's typo is its error. */
function targetPattern(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `target_executor: ${JSON.stringify(source.slice(0, 100))} is not a regular expression (${(err as Error).message.split(': ').at(-1)})`,
      { field: 'target_executor' },
    );
  }
}
