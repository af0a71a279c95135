// 2,000 idle connections on each front door of one `marie executor` (HTTP keep-alive after a
// request, WebSockets answering pings, gRPC HTTP/2 sessions): all stay open within the limits,
// the server still answers, and what each costs the server (RSS per connection) is printed.

import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  executorArgs,
  type MarieProcess,
  portOf,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';
import { idleSocket, metric, rawRequest } from './support.js';

const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
const N = 2000;
let exec: MarieProcess;
let ports: [number, number, number];
let metricsUrl: string;

beforeAll(async () => {
  exec = runMarie(
    executorArgs(
      REFERENCE,
      { protocols: ['grpc', 'http', 'websocket'], ports: [0, 0, 0] },
      '--keep-alive-timeout',
      '120000',
      '--monitoring',
      '--port-monitoring',
      '0',
    ),
  );
  ports = (await waitReady(exec, 3)).map(portOf) as [number, number, number];
  metricsUrl = /monitoring (\S+)/.exec(exec.stdout())![1]!;
}, 30_000);
afterAll(async () => {
  exec?.child.kill('SIGTERM');
  await exec?.exited;
});

const rssKb = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${exec.child.pid}/status`, 'utf8'))![1]);
const settle = () => new Promise((r) => setTimeout(r, 500));
const open = async (protocol: string) =>
  metric(await (await fetch(metricsUrl)).text(), `marie_connections_open{protocol="${protocol}"}`);

/** An HTTP/1.1 connection that made one request and now idles in keep-alive. */
async function keptAlive(port: number): Promise<Socket> {
  const s = await idleSocket(port);
  await new Promise<void>((resolve) => {
    s.once('data', () => resolve());
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  return s;
}

/** N connections, opened 100 at a time. */
async function inBatches<T>(open: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < N; i += 100)
    out.push(...(await Promise.all(Array.from({ length: Math.min(100, N - i) }, open))));
  return out;
}

it(`${N} idle connections per protocol stay open; memory per connection measured`, async () => {
  const [grpcPort, httpPort, wsPort] = ports;
  await settle();
  const rss0 = rssKb();
  const held = await inBatches(() => keptAlive(httpPort));
  await settle();
  const rss1 = rssKb();
  const sockets = await inBatches(
    () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/`, 'json');
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      }),
  );
  await settle();
  const rss2 = rssKb();
  const sessions = await inBatches(
    () =>
      new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const s = http2.connect(`http://127.0.0.1:${grpcPort}`);
        s.once('remoteSettings', () => resolve(s));
        s.once('error', reject);
      }),
  );
  await settle();
  const rss3 = rssKb();
  // (The executor's own ready probe may still hold one keep-alive connection for a few seconds.)
  for (const p of ['http', 'websocket', 'grpc']) {
    expect(await open(p)).toBeGreaterThanOrEqual(N);
    expect(await open(p)).toBeLessThanOrEqual(N + 1);
  }
  // Still serving beside them.
  const body = JSON.stringify({ data: [{ text: 'busy' }] });
  const res = await rawRequest(httpPort, [
    `POST /upper HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  ]);
  expect(JSON.parse(res.body).data[0].text).toBe('BUSY');
  const per = (a: number, b: number) => ((b - a) / N).toFixed(1);
  console.log(
    `idle connections, server RSS per connection: HTTP keep-alive ${per(rss0, rss1)} KB, WebSocket ${per(rss1, rss2)} KB, gRPC (HTTP/2 session) ${per(rss2, rss3)} KB; RSS ${Math.round(rss0 / 1024)} -> ${Math.round(rss3 / 1024)} MB for ${3 * N} connections`,
  );
  // Each costs kilobytes, not megabytes: 3 x 2,000 idle clients fit in well under 1 GB.
  expect(rss3 - rss0).toBeLessThan(600 * 1024);
  for (const s of held) s.destroy();
  for (const ws of sockets) ws.terminate();
  for (const s of sessions) s.destroy();
  const end = Date.now() + 10_000;
  while ((await open('http')) + (await open('websocket')) + (await open('grpc')) > 0) {
    if (Date.now() > end)
      throw new Error(
        `connections not counted closed: http ${await open('http')}, websocket ${await open('websocket')}, grpc ${await open('grpc')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);
