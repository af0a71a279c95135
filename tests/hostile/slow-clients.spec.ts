// 500 slow clients at once against an executor and against a gateway (`marie executor`, `marie
// flow`): heads trickled a byte a second, bodies that stop half way, WebSockets that never read.
// A well-behaved client beside them keeps its latency (p99 under 2x its p99 alone), and every
// slow one is cut off by a deadline. Loopback only; bounded by count; about 10 s per target.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { metric, rawRequest } from './support.js';

const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
const DEADLINES = [
  '--headers-timeout',
  '3000',
  '--body-idle-timeout',
  '3000',
  '--ping-interval',
  '1000',
  '--monitoring',
  '--port-monitoring',
  '0',
];
const BODY = JSON.stringify({ data: [{ text: 'polite' }] });
const TRICKLE = 200;
const HALF = 200;
const DEAF = 100;

let dir: string;
const procs: MarieProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'marie-slow-'));
  writeFileSync(
    join(dir, 'flow.yml'),
    `jtype: Flow
with:
  protocol: [http, websocket]
  port: [0, 0]
  host: 127.0.0.1
executors:
  - name: ref
    uses: ${REFERENCE}
`,
  );
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;

/** `n` POSTs one after another; their latencies in ms. */
async function polite(http: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(`http://127.0.0.1:${http}/upper`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
    });
    const json = (await res.json()) as { data: { text: string }[] };
    if (json.data[0]!.text !== 'POLITE') throw new Error(`wrong answer ${JSON.stringify(json)}`);
    out.push(performance.now() - t);
  }
  return out;
}

/** A WebSocket that sends one request and never reads again. */
function deaf(ws: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = new WebSocket(`ws://127.0.0.1:${ws}/`, 'json');
    c.once('error', reject);
    c.once('open', () => {
      const socket = (c as unknown as { _socket: Socket })._socket;
      c.send(JSON.stringify({ exec_endpoint: '/upper', data: [{ text: 'deaf' }] }));
      socket.pause();
      resolve(socket);
    });
  });
}

async function attack(http: number, ws: number, metricsUrl: string) {
  await polite(http, 50); // warm
  const alone = await polite(http, 300);
  const started = Date.now();
  const head = `POST /upper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`;
  const trickled = Array.from({ length: TRICKLE }, () =>
    rawRequest(http, [...head], { everyMs: 1000, waitMs: 15_000 }),
  );
  const halves = Array.from({ length: HALF }, () =>
    rawRequest(http, [head + BODY.slice(0, BODY.length / 2)], { waitMs: 15_000 }),
  );
  const deafs = await Promise.all(Array.from({ length: DEAF }, () => deaf(ws)));
  // The polite client runs until every slow one is cut.
  const during: number[] = [];
  let all = false;
  const slow = Promise.all([Promise.all(trickled), Promise.all(halves)]).then((r) => {
    all = true;
    return r;
  });
  while (!all) during.push(...(await polite(http, 10)));
  const [t, h] = await slow;
  const text = await (await fetch(metricsUrl)).text();
  for (const s of deafs) s.destroy();
  return { alone, during, t, h, text, ms: Date.now() - started };
}

function check(r: Awaited<ReturnType<typeof attack>>, label: string) {
  const a = p99(r.alone);
  const d = p99(r.during);
  console.log(
    `${label}: polite p99 alone ${a.toFixed(2)} ms, beside ${TRICKLE + HALF + DEAF} slow clients ${d.toFixed(2)} ms (${r.during.length} requests, ${(d / a).toFixed(2)}x); all cut in ${r.ms} ms`,
  );
  expect(r.during.length).toBeGreaterThan(100);
  expect(d).toBeLessThan(2 * a);
  // Every trickled head: 408 at the head deadline (3 s, checked every 750 ms), never answered.
  for (const x of r.t) {
    expect(x.status).toBe(408);
    expect(x.closedAfterMs).toBeLessThan(6000);
  }
  for (const x of r.h) {
    expect(x.status).toBe(408);
    expect(JSON.parse(x.body).detail).toMatch(/bodyIdleTimeoutMs/);
  }
  const cut = (reason: string, protocol: string) =>
    metric(r.text, `marie_connections_cut_total{protocol="${protocol}",reason="${reason}"}`);
  expect(cut('headers_timeout', 'http')).toBeGreaterThanOrEqual(TRICKLE);
  expect(cut('body_idle', 'http')).toBeGreaterThanOrEqual(HALF);
  expect(cut('ping_timeout', 'websocket')).toBe(DEAF);
}

describe('500 slow clients', () => {
  it('against an executor (HTTP and WebSocket)', async () => {
    const p = runMarie(
      executorArgs(REFERENCE, { protocols: ['http', 'websocket'], ports: [0, 0] }, ...DEADLINES),
    );
    procs.push(p);
    const [http, ws] = (await waitReady(p, 2)).map(portOf) as [number, number];
    const url = /monitoring (\S+)/.exec(p.stdout())![1]!;
    check(await attack(http, ws, url), 'executor');
  }, 60_000);

  it('against a gateway (a Flow over HTTP and WebSocket)', async () => {
    const p = runMarie(['flow', '--uses', join(dir, 'flow.yml'), ...DEADLINES]);
    procs.push(p);
    const [http, ws] = (await waitReady(p, 2, 30_000)).map(portOf) as [number, number];
    const url = /monitoring (\S+) gateway/.exec(p.stdout())![1]!;
    check(await attack(http, ws, url), 'gateway');
  }, 60_000);
});
