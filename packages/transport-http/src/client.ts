import {
  createDataRequest,
  type DataRequest,
  ErrorCode,
  MarieError,
  StatusCode,
  throwIfError,
} from '@marie/core';
import { AnyDoc, type AnyDocType, DocList, newDocId, type TSchema } from '@marie/docs';
import { decodeDataRequest, encodeDataRequest } from '@marie/proto';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { answerFromJson, docsJson } from './json-wire.js';

export interface PostOptions<R extends AnyDocType = AnyDocType> {
  parameters?: Record<string, unknown>;
  requestSize?: number;
  targetExecutor?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  resultsInOrder?: boolean;
  continueOnError?: boolean;
  onError?: (error: MarieError) => void;
  responseSchema?: R;
  requestSchema?: TSchema;
}

function parts(docs: readonly object[], size: number): object[][] {
  if (!Number.isInteger(size) || size < 1)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `requestSize must be a positive integer, got ${size}`,
    );
  const out: object[][] = [];
  for (let i = 0; i < docs.length; i += size) out.push(docs.slice(i, i + size));
  return out.length ? out : [[]];
}

function remote(res: DataRequest): MarieError | undefined {
  try {
    throwIfError(res);
  } catch (err) {
    return err as MarieError;
  }
  return undefined;
}

/** Collects answers into one DocList, following continueOnError and resultsInOrder. */
function collect<R extends AnyDocType>(
  answers: DataRequest[],
  options: PostOptions<R>,
): DocList<R['static']> {
  const out: object[] = [];
  for (const a of answers) {
    const err = remote(a);
    if (err) {
      if (!options.continueOnError) throw err;
      options.onError?.(err);
      continue;
    }
    out.push(...(a.docs as object[]));
  }
  return new DocList((options.responseSchema ?? AnyDoc) as R & { static: object }, out as never);
}

function bodyOf(req: DataRequest<any>, schema?: TSchema): Record<string, unknown> {
  const header: Record<string, unknown> = { request_id: req.header.requestId };
  if (req.header.targetExecutor) header.target_executor = req.header.targetExecutor;
  return {
    data: docsJson(req.docs, schema),
    parameters: req.parameters,
    header,
    exec_endpoint: req.header.execEndpoint ?? '/default',
  };
}

export interface HttpClientOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Connections kept open; 8 unless given. */
  poolSize?: number;
}

/** A client of a Marie/Jina HTTP runtime (undici). Requests go to POST /post with their endpoint. */
export class HttpClient {
  readonly origin: string;
  readonly #agent: Agent;

  constructor(options: HttpClientOptions) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.origin = `${options.tls ? 'https' : 'http'}://${host}:${options.port}`;
    this.#agent = new Agent({ connections: options.poolSize ?? 8, keepAliveTimeout: 10_000 });
  }

  async #call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ) {
    try {
      const res = await request(`${this.origin}${path}`, {
        method,
        dispatcher: this.#agent,
        ...(body === undefined
          ? {}
          : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.timeoutMs
          ? { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs }
          : {}),
      });
      return {
        status: res.statusCode,
        json: (await res.body.json().catch(() => ({}))) as Record<string, unknown>,
      };
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.name === 'AbortError')
        throw new MarieError(ErrorCode.Canceled, 'the call was aborted', { cause: err });
      if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT')
        throw new MarieError(ErrorCode.DeadlineExceeded, e.message, { cause: err });
      throw new MarieError(ErrorCode.Unavailable, `${this.origin}: ${e.message}`, { cause: err });
    }
  }

  /** Sends one request and returns the answer as a DataRequest (an error answer carries its status). */
  async send(
    req: DataRequest<any>,
    options: { timeoutMs?: number; signal?: AbortSignal; requestSchema?: TSchema } = {},
  ): Promise<DataRequest> {
    const { status, json } = await this.#call(
      'POST',
      '/post',
      bodyOf(req, options.requestSchema),
      options,
    );
    if (status === 200) return answerFromJson(json);
    if (status === 422 || status === 500) {
      const answer = answerFromJson(
        json.header
          ? json
          : { header: { request_id: req.header.requestId }, parameters: req.parameters },
      );
      if (!answer.header.status) {
        const detail = String(json.detail ?? `HTTP ${status}`);
        answer.header.status = {
          code: StatusCode.ERROR,
          description: status === 422 ? `ValidationError: ${detail}` : detail,
          exception: {
            name: status === 422 ? 'ValidationError' : 'Error',
            args: [detail],
            stacks: [],
            executor: '',
          },
        };
      }
      return answer;
    }
    const code =
      status === 413
        ? ErrorCode.ResourceExhausted
        : status === 503
          ? ErrorCode.Unavailable
          : status === 504
            ? ErrorCode.DeadlineExceeded
            : status === 404
              ? ErrorCode.NotFound
              : ErrorCode.InvalidArgument;
    throw new MarieError(code, `HTTP ${status}: ${String(json.detail ?? '')}`);
  }

  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const schema = docs instanceof DocList ? docs.docType : options.requestSchema;
    const answers = await Promise.all(
      parts(docs, options.requestSize ?? 100).map((part) =>
        this.send(
          createDataRequest({
            endpoint: on,
            docs: part,
            parameters: options.parameters ?? {},
            ...(options.targetExecutor ? { targetExecutor: options.targetExecutor } : {}),
          }),
          {
            ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
            ...(schema ? { requestSchema: schema } : {}),
          },
        ),
      ),
    );
    return collect(answers, options);
  }

  /** Server-Sent Events of a generator endpoint: GET /<endpoint>?field=value. */
  async *streamDoc<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    doc: Record<string, unknown>,
    options: {
      parameters?: Record<string, unknown>;
      responseSchema?: R;
      signal?: AbortSignal;
    } = {},
  ): AsyncGenerator<R['static']> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(doc))
      query.set(k, typeof v === 'string' ? v : JSON.stringify(v));
    if (options.parameters) query.set('parameters', JSON.stringify(options.parameters));
    const path = on.startsWith('/') ? on : `/${on}`;
    const res = await request(`${this.origin}${path}?${query}`, {
      dispatcher: this.#agent,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.statusCode !== 200)
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `HTTP ${res.statusCode}: ${await res.body.text()}`,
      );
    const schema = (options.responseSchema ?? AnyDoc) as R & { static: object };
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += chunk.toString();
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? '{}';
        if (event === 'end') return;
        if (event === 'error')
          throw new MarieError(ErrorCode.Unknown, String(JSON.parse(data).detail));
        if (event === 'update') yield new DocList(schema, [JSON.parse(data)])[0] as R['static'];
      }
    }
  }

  async dryRun(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const { status, json } = await this.#call('GET', '/dry_run', undefined, {
      timeoutMs: options.timeoutMs ?? 5000,
    });
    return status === 200 && json.code === 'SUCCESS';
  }

  async isReady(options: { timeoutMs?: number } = {}): Promise<boolean> {
    try {
      const { status } = await this.#call('GET', '/', undefined, {
        timeoutMs: options.timeoutMs ?? 3000,
        signal: AbortSignal.timeout(options.timeoutMs ?? 3000),
      });
      return status === 200;
    } catch {
      return false;
    }
  }

  close(): void {
    void this.#agent.close();
  }
}

export interface WsClientOptions {
  host: string;
  port: number;
  tls?: boolean;
  /** Sub-protocol: `json` (default) or `bytes` (DataRequestProto frames). */
  subprotocol?: 'json' | 'bytes';
}

/** A client of a Marie/Jina WebSocket runtime: one socket per call, many requests in flight on it. */
export class WsClient {
  readonly url: string;
  readonly subprotocol: 'json' | 'bytes';

  constructor(options: WsClientOptions) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.url = `${options.tls ? 'wss' : 'ws'}://${host}:${options.port}/`;
    this.subprotocol = options.subprotocol ?? 'json';
  }

  /** Sends requests over one socket and resolves to the answers, in request order. */
  exchange(
    requests: DataRequest<any>[],
    options: { timeoutMs?: number; signal?: AbortSignal; requestSchema?: TSchema } = {},
  ): Promise<DataRequest[]> {
    const bytes = this.subprotocol === 'bytes';
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, this.subprotocol, { maxPayload: 1 << 30 });
      const answers = new Map<string, DataRequest>();
      const fail = (err: MarieError) => {
        socket.terminate();
        reject(err);
      };
      const timer = options.timeoutMs
        ? setTimeout(
            () =>
              fail(
                new MarieError(
                  ErrorCode.DeadlineExceeded,
                  `no answer within ${options.timeoutMs} ms`,
                ),
              ),
            options.timeoutMs,
          )
        : undefined;
      options.signal?.addEventListener(
        'abort',
        () => fail(new MarieError(ErrorCode.Canceled, 'the call was aborted')),
        { once: true },
      );
      socket.on('open', () => {
        for (const req of requests)
          socket.send(
            bytes
              ? encodeDataRequest(req, options.requestSchema)
              : JSON.stringify(bodyOf(req, options.requestSchema)),
          );
        socket.send(bytes ? Buffer.from([0]) : '{}');
      });
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        try {
          const res = isBinary
            ? decodeDataRequest(data)
            : answerFromJson(JSON.parse(data.toString('utf8')));
          answers.set(res.header.requestId, res);
        } catch (err) {
          fail(new MarieError(ErrorCode.DataLoss, `unreadable answer: ${(err as Error).message}`));
        }
      });
      socket.on('error', (err) =>
        fail(new MarieError(ErrorCode.Unavailable, `${this.url}: ${err.message}`, { cause: err })),
      );
      socket.on('close', (code, reason) => {
        clearTimeout(timer);
        if (code !== 1000)
          return reject(
            new MarieError(
              code === 1011 ? ErrorCode.Internal : ErrorCode.Unavailable,
              `WebSocket closed ${code}: ${reason.toString()}`,
            ),
          );
        resolve(
          requests.map(
            (r) =>
              answers.get(r.header.requestId) ?? {
                ...r,
                docs: [],
                header: {
                  ...r.header,
                  status: { code: StatusCode.ERROR, description: 'no answer' },
                },
              },
          ),
        );
      });
    });
  }

  async send(
    req: DataRequest<any>,
    options: { timeoutMs?: number; signal?: AbortSignal; requestSchema?: TSchema } = {},
  ): Promise<DataRequest> {
    return (await this.exchange([req], options))[0]!;
  }

  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const schema = docs instanceof DocList ? docs.docType : options.requestSchema;
    const reqs = parts(docs, options.requestSize ?? 100).map((part) =>
      createDataRequest({
        endpoint: on,
        docs: part,
        parameters: options.parameters ?? {},
        requestId: newDocId(),
        ...(options.targetExecutor ? { targetExecutor: options.targetExecutor } : {}),
      }),
    );
    const answers = await this.exchange(reqs, {
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(schema ? { requestSchema: schema } : {}),
    });
    return collect(answers, options);
  }

  /** The WebSocket protocol has no per-document stream: the generator's output comes as one answer. */
  async *streamDoc<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    doc: object,
    options: { parameters?: Record<string, unknown>; responseSchema?: R } = {},
  ): AsyncGenerator<R['static']> {
    yield* await this.post(on, [doc], options);
  }

  async dryRun(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const res = await this.send(createDataRequest({ endpoint: '_jina_dry_run_' }), {
      timeoutMs: options.timeoutMs ?? 5000,
    });
    return res.header.status?.code !== StatusCode.ERROR;
  }

  async isReady(options: { timeoutMs?: number } = {}): Promise<boolean> {
    try {
      return await this.dryRun({ timeoutMs: options.timeoutMs ?? 3000 });
    } catch {
      return false;
    }
  }

  close(): void {}
}
