// What a client may hold at each front door of `marie executor` (gRPC, HTTP, WebSocket), tried
// as an attacker would over raw sockets: heads trickled, bodies that stop, too many headers or
// connections, keep-alive connections left idle, WebSockets that never read, pings in a loop and
// HTTP/2 streams opened and reset in a loop. Every refusal is counted in /metrics.
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { createDataRequest } from '@marie/core';
import { encodeDataRequest } from '@marie/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  executorArgs,
  type MarieProcess,
  portOf,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';
import { bytesOf, h2Session, idleSocket, metric, rawRequest } from './support.js';

const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
const HEAD = 'POST /upper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
const BODY = JSON.stringify({ data: [{ text: 'hi' }] });

let exec: MarieProcess;
let grpcPort: number;
let httpPort: number;
let wsPort: number;
let metricsUrl: string;

beforeAll(async () => {
  exec = runMarie(
    executorArgs(
      REFERENCE,
      { protocols: ['grpc', 'http', 'websocket'], ports: [0, 0, 0] },
      '--headers-timeout',
      '800',
      '--body-idle-timeout',
      '800',
      '--keep-alive-timeout',
      '600',
      '--max-connections',
      '30',
      '--max-header-count',
      '20',
      '--max-header-bytes',
      '4096',
      '--ping-interval',
      '400',
      '--max-buffered-bytes',
      '200000',
      '--min-ping-interval',
      '1000',
      '--max-connection-idle',
      '1500',
      '--monitoring',
      '--port-monitoring',
      '0',
    ),
  );
  const ready = await waitReady(exec, 3);
  [grpcPort, httpPort, wsPort] = ready.map(portOf) as [number, number, number];
  metricsUrl = /monitoring (\S+)/.exec(exec.stdout())![1]!;
}, 30_000);

afterAll(async () => {
  exec?.child.kill('SIGTERM');
  await exec?.exited;
});

const scrape = async () => (await fetch(metricsUrl)).text();
const cut = (text: string, protocol: string, reason: string) =>
  metric(text, `marie_connections_cut_total{protocol="${protocol}",reason="${reason}"}`);

describe('HTTP', () => {
  it('a head trickled a byte every 100 ms is cut at headersTimeoutMs with 408', async () => {
    const r = await rawRequest(httpPort, bytesOf(`${HEAD}Content-Length: 2\r\n\r\n{}`), {
      everyMs: 100,
    });
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).detail).toMatch(/headersTimeoutMs/);
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(700);
    expect(r.closedAfterMs).toBeLessThan(3000);
    // A connection that sends nothing at all is cut the same way.
    const silent = await rawRequest(httpPort, []);
    expect(silent.closedAfterMs).toBeLessThan(3000);
  });

  it('a body that announces 40 bytes more than it sends: 408 after bodyIdleTimeoutMs, connection closed', async () => {
    const r = await rawRequest(httpPort, [
      `${HEAD}Content-Length: ${BODY.length + 40}\r\n\r\n`,
      BODY,
    ]);
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).detail).toMatch(/no progress for 800 ms \(bodyIdleTimeoutMs\)/);
    expect(r.closedAfterMs).toBeLessThan(3000);
  });

  it('a body that keeps arriving slowly is not idle: it is answered', async () => {
    // Each part comes within the idle deadline; the whole takes longer than it.
    const parts = [`${HEAD}Content-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`];
    for (let i = 0; i < BODY.length; i += 3) parts.push(BODY.slice(i, i + 3));
    const r = await rawRequest(httpPort, parts, { everyMs: 300 });
    expect(parts.length * 300).toBeGreaterThan(1600);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).data[0].text).toBe('HI');
  });

  it('a head over maxHeaderBytes or maxHeaderCount: 431', async () => {
    const big = await rawRequest(httpPort, [`${HEAD}X-Big: ${'a'.repeat(5000)}\r\n\r\n`]);
    expect(big.status).toBe(431);
    expect(JSON.parse(big.body).detail).toMatch(/maxHeaderBytes/);
    const many = Array.from({ length: 25 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    const r = await rawRequest(httpPort, [`GET / HTTP/1.1\r\nHost: x\r\n${many}\r\n`]);
    expect(r.status).toBe(431);
    expect(JSON.parse(r.body).detail).toMatch(/more than 20 header fields \(maxHeaderCount\)/);
    expect(r.closedAfterMs).toBeDefined();
  });

  it('an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
    const r = await rawRequest(httpPort, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 5000 });
    expect(r.status).toBe(200);
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(500);
    expect(r.closedAfterMs).toBeLessThan(3000);
  });

  it('connections past maxConnections get 503 naming the limit; served again once they go', async () => {
    const held = await Promise.all(Array.from({ length: 30 }, () => idleSocket(httpPort)));
    const over = await rawRequest(httpPort, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(over.status).toBe(503);
    expect(JSON.parse(over.body).detail).toMatch(/too many connections open \(maxConnections 30\)/);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`http://127.0.0.1:${httpPort}/`)).status).toBe(200);
  });

  it('every cut is counted in /metrics with its reason', async () => {
    const text = await scrape();
    expect(cut(text, 'http', 'headers_timeout')).toBeGreaterThanOrEqual(2);
    expect(cut(text, 'http', 'body_idle')).toBeGreaterThanOrEqual(1);
    expect(cut(text, 'http', 'header_too_large')).toBeGreaterThanOrEqual(2);
    expect(cut(text, 'http', 'max_connections')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/marie_connections_open\{protocol="http"\} \d+/);
  });
});

describe('WebSocket', () => {
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/`, 'json');
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const socketOf = (ws: WebSocket) =>
    (ws as unknown as { _socket: import('node:net').Socket })._socket;
  const openNow = async () =>
    metric(await scrape(), 'marie_connections_open{protocol="websocket"}');
  /** Polls /metrics until the server counted `n` cuts for `reason` and at most `open` connections. */
  const serverCut = async (reason: string, n: number, open: number) => {
    const end = Date.now() + 5000;
    let text = '';
    while (Date.now() < end) {
      text = await scrape();
      if (
        cut(text, 'websocket', reason) >= n &&
        metric(text, 'marie_connections_open{protocol="websocket"}') <= open
      )
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the server did not cut a ${reason} peer: ${text}`);
  };

  it('a peer that never reads is closed by ping liveness; one that reads stays', async () => {
    const before = await openNow();
    const reader = await open();
    const deaf = await open();
    // The deaf peer stops reading its socket: pings stay unread, no pong goes back. (Paused, it
    // cannot see the close itself: the server's count tells.)
    socketOf(deaf).pause();
    await serverCut('ping_timeout', 1, before + 1);
    socketOf(deaf).destroy();
    // The reading peer is still served after several ping rounds.
    const answer = new Promise<string>((r) => reader.once('message', (d) => r(d.toString())));
    reader.send(JSON.stringify({ exec_endpoint: '/upper', data: [{ text: 'hi' }] }));
    expect(JSON.parse(await answer).data[0].text).toBe('HI');
    reader.close();
  });

  it('an upgrade that never finishes is cut at headersTimeoutMs; past maxConnections the upgrade gets 503', async () => {
    const upgrade =
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const stalled = await rawRequest(wsPort, [upgrade]);
    expect(stalled.status).toBe(408);
    expect(stalled.closedAfterMs).toBeLessThan(3000);
    const held = await Promise.all(Array.from({ length: 30 }, () => idleSocket(wsPort)));
    const over = await rawRequest(wsPort, [`${upgrade}\r\n`]);
    expect(over.status).toBe(503);
    expect(JSON.parse(over.body).detail).toMatch(/maxConnections 30/);
    expect(over.closedAfterMs).toBeLessThan(2000); // the refused upgrade's connection is closed
    for (const s of held) s.destroy();
  });

  it('a peer that sends requests and never reads the answers is cut at maxBufferedBytes', async () => {
    const before = await openNow();
    const ws = await open();
    socketOf(ws).pause();
    // 100 KB answers: past the kernel's buffers, 200 KB of them unread cuts the peer (sooner
    // than a ping round could).
    const text = 'x'.repeat(100_000);
    for (let i = 0; i < 100; i++)
      ws.send(JSON.stringify({ exec_endpoint: '/upper', data: [{ text }] }));
    await serverCut('slow_reader', 1, before);
    socketOf(ws).destroy();
  });
});

describe('gRPC', () => {
  it('pings in a loop: GOAWAY ENHANCE_YOUR_CALM too_many_pings, the connection closed', async () => {
    const { session, goaway, closed } = h2Session(grpcPort);
    await new Promise((r) => session.once('connect', r));
    for (let i = 0; i < 10 && !session.destroyed; i++) {
      session.ping(() => {});
      await new Promise((r) => setTimeout(r, 20));
    }
    await closed;
    expect(goaway()).toEqual({
      code: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
      data: 'too_many_pings',
    });
    expect(cut(await scrape(), 'grpc', 'too_many_pings')).toBe(1);
  });

  it('10,000 stream resets on one connection: the connection is closed, the server answers others', async () => {
    const { session, goaway, closed } = h2Session(grpcPort);
    let opened = 0;
    for (let i = 0; i < 10_000 && !session.closed && !session.destroyed; i++) {
      try {
        const s = session.request({
          ':method': 'POST',
          ':path': '/jina.JinaSingleDataRequestRPC/process_single_data',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        s.on('error', () => {});
        s.close(http2.constants.NGHTTP2_CANCEL);
        opened++;
      } catch {
        break;
      }
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await closed;
    expect(goaway()).toBeDefined();
    expect(opened).toBeLessThan(10_000); // cut before the loop could finish
    const client = new Client({ host: `grpc://127.0.0.1:${grpcPort}` });
    const docs = await client.post('/upper', [{ text: 'still here' }]);
    expect((docs[0] as unknown as { text: string }).text).toBe('STILL HERE');
    await client.close();
    expect(cut(await scrape(), 'grpc', 'http2_error')).toBeGreaterThanOrEqual(1);
  });

  it('pings at a polite rate and a client with calls in flight are left alone; idle connections get GOAWAY', async () => {
    const { session, goaway, closed } = h2Session(grpcPort);
    await new Promise((r) => session.once('connect', r));
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1050));
      if (!session.destroyed) session.ping(() => {});
    }
    // maxConnectionIdleMs (1500 ms) without a call: GOAWAY NO_ERROR, as gRPC servers do.
    await closed;
    expect(goaway()?.code).toBe(http2.constants.NGHTTP2_NO_ERROR);
  }, 20_000);

  it('a connection past maxConnectionAgeMs gets GOAWAY; the call in flight finishes within the grace', async () => {
    const aged = runMarie(
      executorArgs(
        REFERENCE,
        {},
        '--max-connection-age',
        '1000',
        '--max-connection-age-grace',
        '5000',
        '--max-connection-idle',
        '0',
      ),
    );
    try {
      const port = portOf((await waitReady(aged))[0]!);
      const { session, goaway, closed } = h2Session(port);
      await new Promise((r) => session.once('connect', r));
      const t = Date.now();
      // A call on this session that outlives the age: 2.5 s of /slow.
      const body = encodeDataRequest(
        createDataRequest({
          endpoint: '/slow',
          docs: [{ text: 'old' }],
          parameters: { delay: 2500 },
        }),
      );
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      Buffer.from(body).copy(frame, 5);
      const call = session.request({
        ':method': 'POST',
        ':path': '/jina.JinaSingleDataRequestRPC/process_single_data',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      call.end(frame);
      const trailers = new Promise<http2.IncomingHttpHeaders>((r) => call.once('trailers', r));
      call.resume();
      expect((await trailers)['grpc-status']).toBe('0');
      expect(goaway()?.code).toBe(http2.constants.NGHTTP2_NO_ERROR);
      await closed;
      expect(Date.now() - t).toBeGreaterThanOrEqual(2400);
    } finally {
      aged.child.kill('SIGTERM');
      await aged.exited;
    }
  }, 30_000);

  it('connections past maxConnections are refused with GOAWAY', async () => {
    const held = Array.from({ length: 30 }, () => h2Session(grpcPort));
    await Promise.all(held.map((h) => new Promise((r) => h.session.once('connect', r))));
    await new Promise((r) => setTimeout(r, 100));
    const over = h2Session(grpcPort);
    await over.closed;
    expect(over.goaway()).toEqual({
      code: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
      data: 'too_many_connections',
    });
    for (const h of held) h.session.destroy();
    expect(cut(await scrape(), 'grpc', 'max_connections')).toBeGreaterThanOrEqual(1);
  });
});
