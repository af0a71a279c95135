import {
  createDataRequest,
  type DataRequest,
  ErrorCode,
  MarieError,
  type PostOptions,
  StatusCode,
  splitDocs,
} from '@marie/core';
import { type AnyDoc, type AnyDocType, DocList, newDocId, type TSchema } from '@marie/docs';
import { decodeDataRequest, encodeDataRequest } from '@marie/proto';
import WebSocket from 'ws';
import { bodyOf, collect } from './client-common.js';
import { answerFromJson } from './json-wire.js';

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
    const reqs = splitDocs(docs, options.requestSize ?? 100).map((part) =>
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
