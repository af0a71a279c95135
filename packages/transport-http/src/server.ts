import { createRequire } from 'node:module';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import {
  type ApiKeys,
  ConnectionStats,
  checkRequestLimits,
  createDataRequest,
  createLogger,
  type DataRequest,
  DRY_RUN_ENDPOINT,
  extractContext,
  type Logger,
  lazySignal,
  MarieError,
  type Processor,
  resolveLimits,
  type ServerLimits,
  StatusCode,
  type TlsServerOptions,
  traceServed,
  tracingEnabled,
  withRequestTimeout,
} from '@marie/core';
import { setTensorElementLimit, type TSchema } from '@marie/docs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { requireApiKeys } from './api-keys.js';
import { toHttpStatus } from './codes.js';
import { guardHttp, httpServerOptions } from './connection-limits.js';
import { answerJson, requestFromJson } from './json-wire.js';
import { ERROR_SCHEMA, openApiModels } from './openapi.js';
import { Liveness, serveWebSocket } from './websocket.js';

export type HttpProtocol = 'http' | 'websocket';

export interface HttpServerOptions {
  /** `http` (REST + OpenAPI + SSE) or `websocket` (sub-protocols json and bytes). */
  protocol?: HttpProtocol;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Largest request body (HTTP) or frame (WebSocket), in bytes; `limits.maxRequestBytes` unless given. */
  bodyLimit?: number;
  /** HTTPS / WSS with this certificate and key (PEM); `clientCa` asks clients for theirs (mutual TLS). */
  tls?: TlsServerOptions;
  /**
   * Every request but health (`GET /`), `/docs` and `/openapi.json` must carry `Authorization:
   * Bearer <key>` with one of these keys: 401 before its body is read otherwise (the WebSocket
   * upgrade too). The OpenAPI document names the scheme.
   */
  apiKeys?: ApiKeys;
  /** Request size, documents, tensor elements, timeout, requests per WebSocket (ServerLimits). */
  limits?: Partial<ServerLimits>;
  /**
   * More routes on the same server (protocol `http`), each registered as its own fastify plugin
   * once the OpenAPI document is set up, so their route schemas appear in it too: the gateway's
   * job API and `/ui`.
   */
  plugins?: readonly HttpPlugin[];
  logger?: Logger;
}

/** A fastify plugin the HTTP server registers (encapsulated: its hooks and handlers stay its own). */
export type HttpPlugin = (app: FastifyInstance) => Promise<void>;

const require = createRequire(import.meta.url);
const VERSION: string = require('../package.json').version;

/** The trace context a caller sent in its headers (`traceparent`, `tracestate`). */
export function headerContext(headers: Record<string, string | string[] | undefined>) {
  return extractContext((key) => {
    const v = headers[key];
    return Array.isArray(v) ? v[0] : v;
  });
}

/** An endpoint's URL path: `/extract` for `/extract`, `/default` for the fallback. */
export function endpointPath(endpoint: string): string {
  return endpoint.startsWith('/') ? endpoint : `/${endpoint}`;
}

/**
 * Serves one executor over HTTP (POST /<endpoint>, POST /post, SSE for generator endpoints,
 * /openapi.json, Swagger UI at /docs, GET / health, /status, /dry_run) or over WebSocket.
 */
export class HttpServer {
  readonly handler: Processor;
  readonly protocol: HttpProtocol;
  readonly app: FastifyInstance;
  readonly #options: HttpServerOptions;
  readonly #logger: Logger;
  readonly #limits: ServerLimits;
  /** Connections open, refused and cut (`marie_connections_*` metrics). */
  readonly connections: ConnectionStats;
  #liveness: Liveness | undefined;
  #serving = false;
  #stopping?: Promise<void>;
  #ready: Promise<void>;

  constructor(handler: Processor, options: HttpServerOptions = {}) {
    this.handler = handler;
    this.protocol = options.protocol ?? 'http';
    this.#options = options;
    this.#logger = options.logger ?? createLogger(this.protocol);
    this.#limits = resolveLimits({
      ...options.limits,
      ...(options.bodyLimit !== undefined ? { maxRequestBytes: options.bodyLimit } : {}),
    });
    const bodyLimit = this.#limits.maxRequestBytes;
    const tls = options.tls;
    this.connections = new ConnectionStats(this.protocol);
    const { http: nodeOptions, ...bounds } = httpServerOptions(this.#limits, this.connections);
    // At shutdown idle keep-alive connections close; busy ones finish their request first.
    this.app = Fastify({
      bodyLimit,
      logger: false,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      ...bounds,
      http: nodeOptions,
      ...(tls
        ? {
            https: {
              ...nodeOptions,
              // The TLS handshake gets the request head's deadline.
              handshakeTimeout: this.#limits.headersTimeoutMs,
              cert: tls.cert,
              key: tls.key,
              ...(tls.clientCa !== undefined
                ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }
                : {}),
            },
          }
        : {}),
    }) as unknown as FastifyInstance;
    guardHttp(this.app, this.#limits, this.connections, tls !== undefined);
    if (options.apiKeys) requireApiKeys(this.app, options.apiKeys);
    // Documents are validated by @marie/docs (errors name `docs[i].field`); route schemas only
    // describe the API for OpenAPI, and answers are serialized by their own toJSON.
    this.app.setValidatorCompiler(() => () => true);
    this.app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    this.app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      // fastify's own errors: malformed JSON 400, body too large 413, wrong content type 415.
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
      if (status >= 500) this.#logger.error({ err }, 'request failed');
      reply.code(status).send({ detail: status >= 500 ? 'internal error' : err.message });
    });
    this.app.setNotFoundHandler((req, reply) => {
      reply.code(404).send({ detail: `no route ${req.method} ${req.url}` });
    });
    this.#ready = this.protocol === 'http' ? this.#http() : this.#websocket(bodyLimit);
  }

  async start(): Promise<{ host: string; port: number; address: string }> {
    await this.#ready;
    setTensorElementLimit(this.#limits.maxTensorElements);
    const host = this.#options.host ?? '0.0.0.0';
    await this.app.listen({ host, port: this.#options.port ?? 0 });
    const address = this.app.server.address();
    const port = typeof address === 'object' && address ? address.port : (this.#options.port ?? 0);
    this.#serving = true;
    const secure = this.#options.tls ? 's' : '';
    const scheme = `${this.protocol === 'http' ? 'http' : 'ws'}${secure}`;
    return { host, port, address: `${scheme}://${host}:${port}` };
  }

  /**
   * Stops taking requests (health 503), lets in-flight ones finish, then closes; connections still
   * open after `graceMs` are cut. Does not close the executor (several servers may share it).
   */
  shutdown(graceMs = 10_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.#serving = false;
      const timer = setTimeout(() => this.app.server.closeAllConnections(), graceMs);
      try {
        await this.app.close();
      } finally {
        clearTimeout(timer);
        this.#liveness?.close();
        this.connections.close();
      }
    })();
    return this.#stopping;
  }

  #health(reply: FastifyReply): void {
    const h = this.handler.health?.();
    if (this.#serving && (h?.serving ?? true)) reply.send({});
    else
      reply.code(503).send({
        detail: this.#serving ? `not serving: ${h?.reason || 'unhealthy'}` : 'not serving',
      });
  }

  /** The request's AbortSignal, made the first time a method asks for it (most never do). */
  #signalOf(_req: FastifyRequest, reply: FastifyReply): () => AbortSignal {
    return lazySignal((abort) => {
      // The client went away before the answer was written: whatever the handler awaits can
      // stop. (The request's own 'close' fires once its body is read; the response's when the
      // socket goes.)
      const gone = () => {
        if (!reply.raw.writableEnded) abort(new Error('the client disconnected'));
      };
      if (reply.raw.closed) gone();
      else reply.raw.once('close', gone);
    });
  }

  /** Runs a request and answers: 200, 422 for bad input, 500 for an executor error. */
  async #answer(
    req: DataRequest,
    http: FastifyRequest,
    signal: () => AbortSignal,
    reply: FastifyReply,
  ): Promise<void> {
    let res: DataRequest;
    try {
      res = await this.#traced(http, () =>
        withRequestTimeout(this.#limits.requestTimeoutMs, signal, (s) =>
          this.handler.handle(req, { signal: s }),
        ),
      );
    } catch (err) {
      // No answer (Processor's contract): a gateway's hop failing below the executor (504 for a
      // deadline, 503 for nobody there), or input it could not carry on (422).
      return this.#refuse(err, reply);
    }
    const status = res.header.status;
    if (status?.code === StatusCode.ERROR) {
      const invalid = status.exception?.name === 'ValidationError';
      const description = status.description.replace(/^ValidationError: /, '');
      // The whole answer travels too (header with the status, parameters, routes), as on gRPC.
      reply
        .code(invalid ? 422 : 500)
        .send({ detail: description, exception: status.exception, ...answerJson(res) });
      return;
    }
    reply.send(answerJson(res));
  }

  /** The work inside a server span whose parent is the caller's `traceparent` header. */
  #traced(http: FastifyRequest, work: () => Promise<DataRequest>): Promise<DataRequest> {
    if (!tracingEnabled()) return work();
    const route = http.routeOptions.url ?? http.url;
    return traceServed(
      `${http.method} ${route}`,
      headerContext(http.headers),
      () => ({
        'http.request.method': http.method,
        'http.route': route,
        'marie.runtime': this.handler.name,
      }),
      work,
    );
  }

  /**
   * A request that gets no answer, in the status its code maps to (codes.ts) with its message;
   * an error of ours (500) goes to the error handler, which logs it and keeps its message back.
   */
  #refuse(err: unknown, reply: FastifyReply): void {
    const e = MarieError.from(err);
    const status = toHttpStatus(e.code);
    if (status === 500) throw err;
    reply.code(status).send({ detail: e.message, ...(e.field ? { field: e.field } : {}) });
  }

  async #http(): Promise<void> {
    const app = this.app;
    const listing = this.handler.endpoints();
    const models = openApiModels(listing);
    for (const schema of models.shared) app.addSchema(schema);
    const keyed = this.#options.apiKeys !== undefined;
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: `${this.handler.kind} (${this.handler.name})`,
          description: `Marie executor: one POST per endpoint. Documents carry tensors as nested number lists and bytes as base64.${keyed ? ' Requests need an API key: Authorization: Bearer <key>.' : ''}`,
          version: VERSION,
        },
        // The scheme every route but health and this description needs (see requireApiKeys).
        ...(keyed
          ? {
              components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
              security: [{ apiKey: [] }],
            }
          : {}),
      },
      refResolver: {
        buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`),
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    // Python's HTTP client reads /openapi.json first (spec/wire.md).
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

    app.get('/', { schema: { hide: true } }, (_req, reply) => this.#health(reply));
    app.get('/status', { schema: { summary: 'Name, versions and endpoints' } }, () => ({
      name: this.handler.name,
      executor: this.handler.kind,
      versions: { marie: VERSION, node: process.version },
      endpoints: listing.endpoints,
    }));
    app.get(
      '/dry_run',
      { schema: { summary: 'Dry run through the executor' } },
      async (_req, reply) => {
        const res = await this.handler.handle(createDataRequest({ endpoint: DRY_RUN_ENDPOINT }));
        const status = res.header.status ?? { code: StatusCode.SUCCESS, description: '' };
        reply.code(status.code === StatusCode.ERROR ? 500 : 200).send({
          code: status.code === StatusCode.ERROR ? 'ERROR' : 'SUCCESS',
          description: status.description,
        });
      },
    );

    for (const plugin of this.#options.plugins ?? []) await app.register(plugin);

    for (const [endpoint, route] of models.routes) {
      const url = endpointPath(endpoint);
      app.post(
        url,
        {
          schema: {
            summary: `POST to ${endpoint}`,
            body: route.body,
            response: { 200: route.response, 422: ERROR_SCHEMA, 500: ERROR_SCHEMA },
          },
        },
        async (req, reply) => {
          let request: DataRequest;
          try {
            request = requestFromJson(req.body, endpoint);
            checkRequestLimits(request, this.#limits);
          } catch (err) {
            return this.#refuse(err, reply);
          }
          await this.#answer(request, req, this.#signalOf(req, reply), reply);
        },
      );
      if (route.isGenerator) {
        app.get(
          url,
          {
            schema: {
              summary: `Stream ${endpoint} as Server-Sent Events (one "update" per document, then "end")`,
            },
          },
          (req, reply) => this.#sse(endpoint, req, reply),
        );
      }
    }

    app.post(
      '/post',
      {
        schema: {
          summary: 'POST to any endpoint named by exec_endpoint',
          body: {
            type: 'object',
            properties: {
              data: { type: 'array', items: { type: 'object' } },
              parameters: { type: 'object' },
              exec_endpoint: { type: 'string' },
              target_executor: { type: 'string' },
            },
          },
        },
      },
      async (req, reply) => {
        let request: DataRequest;
        try {
          request = requestFromJson(req.body);
          checkRequestLimits(request, this.#limits);
        } catch (err) {
          return this.#refuse(err, reply);
        }
        await this.#answer(request, req, this.#signalOf(req, reply), reply);
      },
    );
  }

  /** Server-Sent Events: `update` per yielded document, then `end` (or `error`). */
  async #sse(endpoint: string, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const query = (req.query ?? {}) as Record<string, unknown>;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { parameters: rawParams, ...docFields } = { ...query, ...body };
    let parameters: Record<string, unknown> = {};
    if (typeof rawParams === 'string') {
      try {
        parameters = JSON.parse(rawParams);
      } catch {
        reply.code(422).send({ detail: 'parameters: not valid JSON' });
        return;
      }
    } else if (rawParams && typeof rawParams === 'object')
      parameters = rawParams as Record<string, unknown>;
    const signal = this.#signalOf(req, reply);
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const toJson = (doc: object, type: TSchema | undefined) =>
      answerJson({ header: { requestId: '' }, parameters: {}, routes: [], docs: [doc] }, type)
        .data as unknown[];
    for await (const part of this.handler.streamDoc(
      {
        header: { requestId: String(req.id), execEndpoint: endpoint },
        parameters,
        routes: [],
        document: docFields,
      },
      { signal },
    )) {
      if (out.destroyed) break;
      if (part.header.status?.code === StatusCode.ERROR) {
        out.write(
          `event: error\ndata: ${JSON.stringify({ detail: part.header.status.description, exception: part.header.status.exception })}\n\n`,
        );
        break;
      }
      out.write(
        `event: update\ndata: ${JSON.stringify(toJson(part.document as object, part.docType)[0])}\n\n`,
      );
    }
    if (!out.destroyed) out.end('event: end\ndata: {}\n\n');
  }

  async #websocket(maxPayload: number): Promise<void> {
    const limits = this.#limits;
    const liveness = limits.pingIntervalMs
      ? new Liveness(limits.pingIntervalMs, () => this.connections.cut('ping_timeout'))
      : undefined;
    this.#liveness = liveness;
    await this.app.register(websocket, {
      options: {
        maxPayload,
        // Python peers offer `json` or `bytes` (spec/wire.md); no offer means json.
        handleProtocols: (offered: Set<string>) =>
          offered.has('bytes') ? 'bytes' : offered.has('json') ? 'json' : false,
      },
    });
    this.app.route({
      method: 'GET',
      url: '/',
      handler: (_req, reply) => this.#health(reply),
      wsHandler: (socket, req) =>
        serveWebSocket(socket, this.handler, this.#logger, {
          parent: headerContext(req.headers),
          limits,
          ...(liveness ? { liveness } : {}),
          stats: this.connections,
        }),
    });
  }
}
