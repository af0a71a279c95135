import {
  type DataRequest,
  failSpan,
  type Logger,
  type Processor,
  SpanKind,
  StatusCode,
  type TraceContext,
  traced,
  tracingEnabled,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { decodeDataRequest, encodeDataRequest } from '@marie/proto';
import type { WebSocket } from 'ws';
import { answerJson, requestFromJson } from './json-wire.js';

/** The close code for every failure (spec/wire.md); reasons must fit a close frame (123 bytes). */
const FAILURE = 1011;

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
  /** The trace context the upgrade request carried: each request's span is its child. */
  parent?: TraceContext,
): void {
  const bytes = socket.protocol === 'bytes';
  const controller = new AbortController();
  let pending = 0;
  let ended = false;
  let failed = false;
  const fail = (reason: string) => {
    if (failed) return;
    failed = true;
    socket.close(FAILURE, Buffer.from(reason).subarray(0, 120).toString());
  };
  const maybeEnd = () => {
    if (ended && pending === 0 && !failed) socket.close(1000, 'end of stream');
  };
  socket.on('close', () => controller.abort(new Error('the WebSocket closed')));
  socket.on('error', (err) => logger.warn({ err }, 'WebSocket error'));

  const run = (req: DataRequest, encode: (res: DataRequest) => string | Uint8Array) => {
    pending++;
    const work = () => handler.handle(req, { signal: controller.signal });
    (tracingEnabled()
      ? traced(
          'WebSocket request',
          {
            kind: SpanKind.SERVER,
            ...(parent ? { parent } : {}),
            attributes: {
              'marie.runtime': handler.name,
              'websocket.subprotocol': bytes ? 'bytes' : 'json',
            },
          },
          async (span) => {
            const res = await work();
            if (res.header.status?.code === StatusCode.ERROR)
              failSpan(span, res.header.status.description);
            return res;
          },
        )
      : work()
    )
      .then((res) => {
        if (socket.readyState === socket.OPEN) socket.send(encode(res));
      })
      .catch((err: unknown) => {
        const code = (err as { code?: string }).code;
        // A gateway hop that timed out or found nobody is reported, anything else is ours.
        if (code === 'deadline_exceeded' || code === 'unavailable')
          return fail(`${code}: ${(err as Error).message}`);
        logger.error({ err }, 'WebSocket request failed');
        fail('internal error');
      })
      .finally(() => {
        pending--;
        maybeEnd();
      });
  };
  const schemaOf = (res: DataRequest) =>
    handler.endpointFor(res.header.execEndpoint)?.responseSchema;

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (ended || failed) return;
    if (bytes) {
      if (!isBinary) return fail('the bytes sub-protocol takes binary frames');
      if (data.length === 1 && data[0] === 0) {
        ended = true;
        return maybeEnd();
      }
      let req: DataRequest;
      try {
        req = decodeDataRequest(data);
      } catch (err) {
        return fail((err as Error).message);
      }
      return run(req, (res) => encodeDataRequest(res, schemaOf(res)));
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
    run(req, (res) => JSON.stringify(answerJson(res, schemaOf(res))));
  });
}
