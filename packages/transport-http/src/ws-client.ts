import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  createDataRequest,
  type DataRequest,
  ErrorCode,
  MarieError,
  type PostOptions,
  postRequests,
  StatusCode,
  type TlsClientOptions,
} from '@marie/core';
import type { AnyDoc, AnyDocType, DocList, TSchema } from '@marie/docs';
import { decodeDataRequest, encodeDataRequest } from '@marie/proto';
import WebSocket from 'ws';
import { bodyOf, collect, requestHeaders } from './client-common.js';
import { tlsConnectOptions } from './http-client.js';
import { answerFromJson } from './json-wire.js';

export interface WsClientOptions {
  host: string;
  port: number;
  /** wss: true for the system roots, or what to trust and present (see HttpClientOptions.tls). */
  tls?: boolean | TlsClientOptions;
  /** Sent as `Authorization: Bearer <key>` with the upgrade request. */
  apiKey?: string;
  /** Sub-protocol: `json` (default) or `bytes` (DataRequestProto frames). */
  subprotocol?: 'json' | 'bytes';
}

/** A client of a Marie/Jina WebSocket runtime: one socket per call, many requests in flight on it. */
export class WsClient {
  readonly url: string;
  readonly subprotocol: 'json' | 'bytes';
  readonly #tls: TlsClientOptions;
  readonly #apiKey: string | undefined;

  constructor(options: WsClientOptions) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.url = `${options.tls ? 'wss' : 'ws'}://${host}:${options.port}/`;
    this.subprotocol = options.subprotocol ?? 'json';
    this.#tls = typeof options.tls === 'object' ? tlsConnectOptions(options.tls) : {};
    this.#apiKey = options.apiKey;
  }

  /** Sends requests over one socket and resolves to the answers, in request order. */
  exchange(
    requests: DataRequest<any>[],
    options: {
      timeoutMs?: number;
      signal?: AbortSignal;
      requestSchema?: TSchema;
      onProgress?: PostOptions['onProgress'];
    } = {},
  ): Promise<DataRequest[]> {
    const bytes = this.subprotocol === 'bytes';
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, this.subprotocol, {
        maxPayload: 1 << 30,
        headers: requestHeaders(this.#apiKey),
        ...this.#tls,
      });
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
          options.onProgress?.({ done: answers.size, total: requests.length });
        } catch (err) {
          fail(new MarieError(ErrorCode.DataLoss, `unreadable answer: ${(err as Error).message}`));
        }
      });
      // A refused upgrade (401 without a key, 503 while stopping) says why in its status.
      socket.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => {
          let detail = body;
          try {
            detail = String((JSON.parse(body) as { detail?: unknown }).detail ?? body);
          } catch {}
          fail(
            new MarieError(
              status === 401
                ? ErrorCode.Unauthenticated
                : status === 413 || status === 429
                  ? ErrorCode.ResourceExhausted
                  : status >= 500
                    ? ErrorCode.Unavailable
                    : ErrorCode.InvalidArgument,
              `WebSocket upgrade refused: HTTP ${status}${detail ? `: ${detail}` : ''}`,
            ),
          );
        });
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
    const { requests, schema } = postRequests(on, docs, options);
    const answers = await this.exchange(requests, {
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(schema ? { requestSchema: schema } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
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

  /**
   * True when the server's health answers 200: a plain `GET /` on the WebSocket port (what
   * orchestrators probe; it needs no API key and opens no socket). Never throws.
   */
  async isReady(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const url = this.url.replace(/^ws/, 'http');
    const timeoutMs = options.timeoutMs ?? 3000;
    return new Promise<boolean>((resolve) => {
      const req = (url.startsWith('https') ? httpsRequest : httpRequest)(
        url,
        { method: 'GET', timeout: timeoutMs, ...this.#tls },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  close(): void {}
}
