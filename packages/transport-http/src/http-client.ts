import {
  checkTlsClient,
  type DataRequest,
  ErrorCode,
  MarieError,
  type PostOptions,
  postRequests,
  StatusCode,
  type TlsClientOptions,
} from '@marie/core';
import { AnyDoc, type AnyDocType, DocList, type TSchema } from '@marie/docs';
import { Agent, request } from 'undici';
import { bodyOf, collect, requestHeaders } from './client-common.js';
import { fromHttpStatus } from './codes.js';
import { answerFromJson } from './json-wire.js';

export interface HttpClientOptions {
  host: string;
  port: number;
  /**
   * HTTPS: true for the system roots, or `ca` (PEM) to trust instead; `cert` and `key` (PEM)
   * present a client certificate (mutual TLS).
   */
  tls?: boolean | TlsClientOptions;
  /** Connections kept open; 8 unless given. */
  poolSize?: number;
  /** Sent as `Authorization: Bearer <key>` on every request. */
  apiKey?: string;
}

/** Node's TLS connect options from ours; errors name the field. */
export function tlsConnectOptions(tls: TlsClientOptions): TlsClientOptions {
  checkTlsClient(tls);
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key! } : {}),
  };
}

/** A client of a Marie/Jina HTTP runtime (undici). Requests go to POST /post with their endpoint. */
export class HttpClient {
  readonly origin: string;
  readonly #agent: Agent;
  readonly #apiKey: string | undefined;

  constructor(options: HttpClientOptions) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.origin = `${options.tls ? 'https' : 'http'}://${host}:${options.port}`;
    this.#apiKey = options.apiKey;
    this.#agent = new Agent({
      connections: options.poolSize ?? 8,
      keepAliveTimeout: 10_000,
      ...(typeof options.tls === 'object' ? { connect: tlsConnectOptions(options.tls) } : {}),
    });
  }

  /** Headers of every request: the active trace context and the API key, if any. */
  #headers(json: boolean): Record<string, string> {
    return requestHeaders(this.#apiKey, json ? { 'content-type': 'application/json' } : {});
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
        headers: this.#headers(body !== undefined),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
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
    throw new MarieError(fromHttpStatus(status), `HTTP ${status}: ${String(json.detail ?? '')}`);
  }

  async post<R extends AnyDocType = typeof AnyDoc>(
    on: string,
    docs: DocList<any> | readonly object[] = [],
    options: PostOptions<R> = {},
  ): Promise<DocList<R['static']>> {
    const { requests, schema } = postRequests(on, docs, options);
    let done = 0;
    const answers = await Promise.all(
      requests.map(async (req) => {
        const answer = await this.send(req, {
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(schema ? { requestSchema: schema } : {}),
        });
        options.onProgress?.({ done: ++done, total: requests.length });
        return answer;
      }),
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
      headers: this.#headers(false),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.statusCode !== 200)
      throw new MarieError(
        fromHttpStatus(res.statusCode),
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
