import {
  type ConnectionStats,
  checkRequestLimits,
  type DataRequest,
  DEFAULT_LIMITS,
  type Logger,
  MarieError,
  type Processor,
  type ServerLimits,
  type TraceContext,
  traceServed,
  withRequestTimeout,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { checkDocsBytes, decodeDataRequest, docsReader, encodeDataRequest } from '@marie/proto';
import type { WebSocket } from 'ws';
import { answerJson, requestFromJson } from './json-wire.js';

/**
 * Ping/pong liveness for every WebSocket of a server, on one timer: each tick pings the sockets
 * that answered the previous ping and closes those that did not (a peer gone, or one that stopped
 * reading: its pong never comes).
 */
export class Liveness {
  readonly #alive = new Map<WebSocket, boolean>();
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs: number, onDead: () => void) {
    this.#timer = setInterval(() => {
      for (const [socket, alive] of this.#alive) {
        if (!alive) {
          this.#alive.delete(socket);
          onDead();
          socket.terminate();
          continue;
        }
        this.#alive.set(socket, false);
        socket.ping();
      }
    }, intervalMs);
    this.#timer.unref();
  }

  add(socket: WebSocket): void {
    this.#alive.set(socket, true);
    socket.on('pong', () => {
      if (this.#alive.has(socket)) this.#alive.set(socket, true);
    });
    socket.once('close', () => this.#alive.delete(socket));
  }

  get size(): number {
    return this.#alive.size;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#alive.clear();
  }
}

/** The close code for every failure (spec/wire.md); reasons must fit a close frame (123 bytes). */
const FAILURE = 1011;
/** A request over a limit (documents per request): "message too big". */
const TOO_BIG = 1009;

/**
 * One WebSocket connection. Sub-protocol `json`: each text frame a request shaped like the HTTP
 * body, `{}` ends the client's stream. `bytes`: each binary frame a DataRequestProto, a single
 * 0x00 byte ends it. Requests run concurrently; answers carry their request_id; the socket closes
 * (1000) once the client ended and every answer is out. Garbage closes it with 1011.
 */
export function serveWebSocket(
  socket: WebSocket,
  handler: Processor,
  logger: Logger,
  options: {
    /** The trace context the upgrade request carried: each request's span is its child. */
    parent?: TraceContext;
    limits?: ServerLimits;
    /** Pings the socket while it is open (the server's, shared by its sockets). */
    liveness?: Liveness;
    /** Counts a socket cut for not reading (`slow_reader`). */
    stats?: ConnectionStats;
  } = {},
): void {
  const { parent, stats } = options;
  options.liveness?.add(socket);
  const limits = options.limits ?? DEFAULT_LIMITS;
  const bytes = socket.protocol === 'bytes';
  const controller = new AbortController();
  let pending = 0;
  /** Requests received while `maxConcurrentPerConnection` ran, in order. */
  const waiting: (() => void)[] = [];
  let ended = false;
  let failed = false;
  const fail = (reason: string, code = FAILURE) => {
    if (failed) return;
    failed = true;
    socket.close(code, Buffer.from(reason).subarray(0, 120).toString());
  };

  const maybeEnd = () => {
    if (ended && pending === 0 && waiting.length === 0 && !failed)
      socket.close(1000, 'end of stream');
  };
  socket.on('close', () => controller.abort(new Error('the WebSocket closed')));
  socket.on('error', (err) => logger.warn({ err }, 'WebSocket error'));

  /** `count`: the documents of a request whose documents are still serialized. */
  const run = (
    req: DataRequest,
    encode: (res: DataRequest) => string | Uint8Array,
    count?: number,
  ) => {
    try {
      checkRequestLimits(req, limits, count);
    } catch (err) {
      return fail((err as Error).message, TOO_BIG);
    }
    // Requests in flight on this socket are bounded: past the limit a request waits its turn
    // (frames already received are kept in order) and reading pauses, so the client's further
    // frames wait in TCP's buffers.
    if (pending >= limits.maxConcurrentPerConnection) {
      waiting.push(() => start(req, encode));
      socket.pause();
      return;
    }
    start(req, encode);
  };
  const start = (req: DataRequest, encode: (res: DataRequest) => string | Uint8Array) => {
    pending++;
    const work = () =>
      withRequestTimeout(
        limits.requestTimeoutMs,
        () => controller.signal,
        (signal) =>
          handler.handle(
            req,
            // Bytes frames: documents may stay serialized both ways (see the message handler).
            bytes ? { signal: signal(), docsBytes: true, docsReader } : { signal: signal() },
          ),
      );
    traceServed(
      'WebSocket request',
      parent,
      () => ({ 'marie.runtime': handler.name, 'websocket.subprotocol': bytes ? 'bytes' : 'json' }),
      work,
    )
      .then((res) => {
        if (socket.readyState !== socket.OPEN) return;
        // A peer that lets answers pile up unread is cut, not buffered for without end.
        if (socket.bufferedAmount > limits.maxBufferedBytes) {
          stats?.cut('slow_reader');
          failed = true;
          socket.terminate();
          return;
        }
        socket.send(encode(res));
      })
      .catch((err: unknown) => {
        const e = MarieError.from(err);
        // A gateway hop that timed out or found nobody, or input it could not carry on, is
        // reported; anything else is ours.
        if (
          e.code === 'deadline_exceeded' ||
          e.code === 'unavailable' ||
          e.code === 'invalid_argument' ||
          e.code === 'resource_exhausted'
        )
          return fail(
            `${e.code}: ${e.message}`,
            e.code === 'resource_exhausted' ? TOO_BIG : FAILURE,
          );
        logger.error({ err }, 'WebSocket request failed');
        fail('internal error');
      })
      .finally(() => {
        pending--;
        const next = waiting.shift();
        if (next) next();
        else socket.resume();
        maybeEnd();
      });
  };
  // Answers' documents carry their type (Processor's contract): nothing is looked up here.

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (ended || failed) return;
    if (bytes) {
      if (!isBinary) return fail('the bytes sub-protocol takes binary frames');
      if (data.length === 1 && data[0] === 0) {
        ended = true;
        return maybeEnd();
      }
      // As gRPC does: a gateway forwards documents unread, an executor reads them when its method
      // first uses them; bytes that would not read are refused here (checkDocsBytes).
      let read: ReturnType<typeof checkDocsBytes>;
      try {
        const docsBytes = handler.passesDocsThrough === true;
        read = checkDocsBytes(decodeDataRequest(data, { docsBytes }));
      } catch (err) {
        return fail((err as Error).message);
      }
      return run(read.req, (res) => encodeDataRequest(res), read.count);
    }
    if (isBinary) return fail('the json sub-protocol takes text frames');
    let body: unknown;
    try {
      body = JSON.parse(data.toString('utf8'));
    } catch {
      return fail('malformed JSON');
    }
    if (isPlainObject(body) && Object.keys(body).length === 0) {
      ended = true;
      return maybeEnd();
    }
    let req: DataRequest;
    try {
      req = requestFromJson(body);
    } catch (err) {
      return fail((err as Error).message);
    }
    run(req, (res) => JSON.stringify(answerJson(res)));
  });
}
