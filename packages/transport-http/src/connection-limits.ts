import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionStats, CutReason, ServerLimits } from '@marie/core';
import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';

/**
 * How long and how much an HTTP (or WebSocket) client may hold: the request head within
 * `headersTimeoutMs` (Node's parser), the whole request within `requestTimeoutMs`, a body that
 * stands still for `bodyIdleTimeoutMs` answered 408, idle keep-alive connections closed after
 * `keepAliveTimeoutMs`, heads over `maxHeaderBytes`/`maxHeaderCount` answered 431, and
 * connections past `maxConnections` answered 503. Each refusal closes the connection and is
 * counted in `stats`.
 */

/** Node's http server options and fastify's own, from the limits. */
export function httpServerOptions(
  limits: ServerLimits,
  stats: ConnectionStats,
): Pick<FastifyServerOptions, 'keepAliveTimeout' | 'requestTimeout' | 'clientErrorHandler'> & {
  http: Record<string, number>;
} {
  const headersTimeout = limits.headersTimeoutMs;
  return {
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node refuses a head deadline beyond the whole request's.
    requestTimeout: limits.requestTimeoutMs ? Math.max(limits.requestTimeoutMs, headersTimeout) : 0,
    http: {
      headersTimeout,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node checks the deadlines on a timer: often enough for the shortest of them.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    clientErrorHandler(err: Error & { code?: string; bytesParsed?: number }, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      let status = 400;
      let detail = `bad request: ${err.message}`;
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        status = 408;
        const inBody = (socket as Marked)[RECEIVING] === true;
        const reason: CutReason = inBody ? 'request_timeout' : 'headers_timeout';
        stats.cut(reason);
        detail = inBody
          ? `the request did not arrive within ${limits.requestTimeoutMs} ms (requestTimeoutMs)`
          : `the request head did not arrive within ${headersTimeout} ms (headersTimeoutMs)`;
      } else if (err.code === 'HPE_HEADER_OVERFLOW') {
        status = 431;
        stats.cut('header_too_large');
        // Node says the same for too many fields (maxHeadersCount) as for too many bytes.
        detail =
          (err.bytesParsed ?? Number.POSITIVE_INFINITY) < limits.maxHeaderBytes
            ? `the request has more than ${limits.maxHeaderCount} header fields (maxHeaderCount)`
            : `the request head is larger than ${limits.maxHeaderBytes} bytes (maxHeaderBytes)`;
      }
      if (socket.writable) socket.write(rawAnswer(status, detail));
      socket.destroy();
    },
  };
}

/** On a socket whose request head was read and whose body is still arriving. */
const RECEIVING = Symbol('marie.receiving');
/** On a socket accepted past `maxConnections`: its first request is answered 503. */
const OVER_CAP = Symbol('marie.overCap');
type Marked = Socket & { [RECEIVING]?: boolean; [OVER_CAP]?: boolean };

function rawAnswer(status: number, detail: string): string {
  const body = JSON.stringify({ detail });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Closes the connection once a refusal is written. Node closes a plain request's connection after
 * an answer with `Connection: close`; a WebSocket upgrade's socket is handed to fastify with no
 * one to close it (a refused upgrade kept its connection until the client gave up).
 */
export function closeAfter(reply: FastifyReply): void {
  const socket = reply.request.raw.socket;
  reply.raw.once('finish', () => socket.end());
  reply.header('connection', 'close');
}

/**
 * Counts connections and enforces what fastify's options cannot: the connection cap (a clear
 * 503, not a silently dropped socket) and the body's idle deadline. Call
 * before routes are registered (the hooks reach every route, WebSocket upgrades included).
 */
export function guardHttp(
  app: FastifyInstance,
  limits: ServerLimits,
  stats: ConnectionStats,
  secure: boolean,
): void {
  const server = app.server;
  // Node refuses a head with more fields (HPE_HEADER_OVERFLOW, answered 431 above).
  server.maxHeadersCount = limits.maxHeaderCount;
  server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
    if (stats.opened() > limits.maxConnections) (socket as Marked)[OVER_CAP] = true;
    socket.once('close', () => stats.closed());
  });

  app.addHook('onRequest', (req, reply, done) => {
    const socket = req.raw.socket as Marked;
    if (socket[OVER_CAP]) {
      stats.cut('max_connections');
      closeAfter(reply);
      reply
        .code(503)
        .header('retry-after', '1')
        .send({
          detail: `the server has too many connections open (maxConnections ${limits.maxConnections}): try again later`,
        });
      return;
    }
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody && !req.raw.complete) {
      socket[RECEIVING] = true;
      const received = () => {
        socket[RECEIVING] = false;
        if (limits.bodyIdleTimeoutMs) socket.setTimeout(0);
      };
      req.raw.once('end', received);
      req.raw.once('close', received);
      // The socket's inactivity timer: any byte of the body re-arms it. Node emits 'timeout' on
      // a request still incomplete, and destroys nothing itself when someone listens.
      if (limits.bodyIdleTimeoutMs)
        req.raw.setTimeout(limits.bodyIdleTimeoutMs, () => {
          if (req.raw.complete) return;
          stats.cut('body_idle');
          const detail = `the request body made no progress for ${limits.bodyIdleTimeoutMs} ms (bodyIdleTimeoutMs)`;
          if (!reply.raw.headersSent && socket.writable)
            socket.end(rawAnswer(408, detail), () => socket.destroy());
          else socket.destroy();
        });
    }
    done();
  });
}
