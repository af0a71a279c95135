// API keys and limits on the front doors of a running Flow (gateway over gRPC, HTTP and
// WebSocket, with the job API) and of an executor: refused without a key before a body is read,
// health and the API's description open, the scheme in the OpenAPI document, the key never in a
// log line; request size, documents per request, tensor elements, request timeout and requests
// in flight per connection, each answered in its protocol's terms.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { NdArray } from '@marie/docs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type TestDatabase, testDatabase } from '../../packages/storage/test/support/postgres.js';
import {
  executorArgs,
  type MarieProcess,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
const FILE_KEY = 'file-key-8f3a9c21d7e64b05';
const ENV_KEY = 'env-key-41c7e2b9a05f36d8';
let db: TestDatabase;
let dir: string;
let flow: MarieProcess;
let grpc: string;
let http: string;
let ws: string;

beforeAll(async () => {
  db = await testDatabase('marie_keys');
  dir = mkdtempSync(join(tmpdir(), 'marie-keys-'));
  writeFileSync(join(dir, 'keys.txt'), `# gateway keys\n${FILE_KEY}\n`);
  writeFileSync(
    join(dir, 'flow.yml'),
    `jtype: Flow
with:
  protocol: [grpc, http, websocket]
  port: [0, 0, 0]
  host: 127.0.0.1
  api_keys_file: keys.txt
  max_request_bytes: 65536
  max_docs_per_request: 5
  request_timeout: 1000
  max_concurrent_per_connection: 2
executors:
  - name: ref
    uses: ${REFERENCE}
jobs:
  database: "${db.url}"
  queues: { upper: 1 }
`,
  );
  flow = runMarie(['--log-level', 'trace', 'flow', '--uses', join(dir, 'flow.yml')], {
    env: { MARIE_API_KEYS: ENV_KEY, MARIE_LOG_LEVEL: 'trace' },
  });
  [grpc, http, ws] = (await waitReady(flow, 3, 60_000)).map((l) => l.slice('ready '.length)) as [
    string,
    string,
    string,
  ];
}, 90_000);
afterAll(async () => {
  if (flow && flow.child.exitCode === null) flow.child.kill('SIGKILL');
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('API keys on the gateway', () => {
  it('HTTP: 401 without a key or with a wrong one, answers with either key; health, /docs and /openapi.json stay open', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${http}/upper`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ data: [{ text: 'keyed' }] }),
      });
    const none = await post({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { detail: string }).detail).toMatch(/API key/);
    expect((await post(bearer('wrong-key'))).status).toBe(401);
    expect((await post({ authorization: FILE_KEY })).status).toBe(401); // no scheme
    for (const key of [FILE_KEY, ENV_KEY]) {
      const ok = await post(bearer(key));
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { data: { text: string }[] }).data[0]!.text).toBe('KEYED');
    }
    expect((await fetch(`${http}/`)).status).toBe(200);
    expect((await fetch(`${http}/docs`)).status).toBeLessThan(400);
    const spec = (await (await fetch(`${http}/openapi.json`)).json()) as {
      components: { securitySchemes: Record<string, unknown> };
      security: unknown;
    };
    expect(spec.components.securitySchemes.apiKey).toEqual({ type: 'http', scheme: 'bearer' });
    expect(spec.security).toEqual([{ apiKey: [] }]);
    // The job API and /ui's calls need it; /ui's page does not.
    expect((await fetch(`${http}/api/v1/jobs`)).status).toBe(401);
    expect((await fetch(`${http}/api/v1/jobs`, { headers: bearer(FILE_KEY) })).status).toBe(200);
    expect((await fetch(`${http}/ui`)).status).toBe(200);
    // The Client sends its key to the job API too.
    const keyed = new Client({ host: http, apiKey: ENV_KEY });
    const { job_id } = await keyed.submitJob({ endpoint: '/upper', ref_id: 'k1' });
    expect((await keyed.waitForJob(job_id, { timeoutMs: 20_000 })).state).toBe('completed');
    await expect(new Client({ host: http }).jobs()).rejects.toMatchObject({
      code: 'unauthenticated',
    });
  });

  it('HTTP: refuses before the body is read (a 50 MB body announced, none sent)', async () => {
    const url = new URL(http);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          'POST /upper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n',
        );
      });
      let got = '';
      socket.on('data', (c) => {
        got += c.toString();
        if (got.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer without a body: ${got}`)), 3000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('gRPC: UNAUTHENTICATED without a key, health open, answers with one; WebSocket: the upgrade refused without one', async () => {
    const anonymous = new Client({ host: grpc });
    expect(await anonymous.isReady()).toBe(true);
    await expect(anonymous.post('/upper', [{ text: 'x' }])).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    anonymous.close();
    const wrong = new Client({ host: grpc, apiKey: 'wrong' });
    await expect(wrong.post('/upper', [{ text: 'x' }], { maxAttempts: 3 })).rejects.toMatchObject({
      code: 'unauthenticated', // not retried: only UNAVAILABLE is
    });
    wrong.close();
    const keyed = new Client({ host: grpc, apiKey: FILE_KEY });
    expect((await keyed.post('/upper', [{ text: 'grpc' }]))[0]!.text).toBe('GRPC');
    keyed.close();

    const wsAnonymous = new Client({ host: ws });
    expect(await wsAnonymous.isReady()).toBe(true);
    await expect(wsAnonymous.post('/upper', [{ text: 'x' }])).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    for (const subprotocol of ['json', 'bytes'] as const) {
      const wsKeyed = new Client({ host: ws, apiKey: ENV_KEY, subprotocol });
      expect((await wsKeyed.post('/upper', [{ text: 'ws' }]))[0]!.text).toBe('WS');
    }
  });

  it('never writes a key into a log line, even at trace level', () => {
    const logs = flow.stderr();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(FILE_KEY);
    expect(logs).not.toContain(ENV_KEY);
    expect(logs).not.toContain('wrong-key');
  });
});

describe('limits on the gateway', () => {
  const client = () => new Client({ host: grpc, apiKey: FILE_KEY });

  it('request size: HTTP 413, gRPC RESOURCE_EXHAUSTED, WebSocket closed 1009', async () => {
    const big = 'x'.repeat(70_000);
    const res = await fetch(`${http}/upper`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(FILE_KEY) },
      body: JSON.stringify({ data: [{ text: big }] }),
    });
    expect(res.status).toBe(413);
    const c = client();
    await expect(c.post('/upper', [{ text: big }])).rejects.toMatchObject({
      code: 'resource_exhausted',
    });
    c.close();
    const code = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${ws}/`, 'json', { headers: bearer(FILE_KEY) });
      socket.on('open', () => socket.send(JSON.stringify({ data: [{ text: big }] })));
      socket.on('close', (code) => resolve(code));
      socket.on('error', () => {});
    });
    expect(code).toBe(1009);
  });

  it('documents per request: 5 pass, 6 are refused naming the limit, on each protocol', async () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ text: `d${i}` }));
    const c = client();
    expect(await c.post('/upper', six.slice(0, 5), { requestSize: 5 })).toHaveLength(5);
    await expect(c.post('/upper', six, { requestSize: 6 })).rejects.toMatchObject({
      code: 'resource_exhausted',
      message: expect.stringContaining('maxDocsPerRequest'),
    });
    c.close();
    const res = await fetch(`${http}/upper`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(FILE_KEY) },
      body: JSON.stringify({ data: six }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toMatch(
      /6 documents, more than the limit of 5/,
    );
    const wsClient = new Client({ host: ws, apiKey: FILE_KEY });
    await expect(wsClient.post('/upper', six, { requestSize: 6 })).rejects.toMatchObject({
      message: expect.stringContaining('1009'),
    });
  });

  it('request timeout: a request past 1 s is answered DEADLINE_EXCEEDED / 504, and the server goes on', async () => {
    const c = client();
    await expect(
      c.post('/slow', [{ text: 'late' }], { parameters: { delay: 3000 } }),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' });
    const res = await fetch(`${http}/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(FILE_KEY) },
      body: JSON.stringify({ data: [{ text: 'late' }], parameters: { delay: 3000 } }),
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/requestTimeoutMs/);
    expect((await c.post('/upper', [{ text: 'after' }]))[0]!.text).toBe('AFTER');
    c.close();
  });

  it('requests in flight per connection: 6 slow ones on one gRPC stream or one WebSocket run 2 at a time', async () => {
    const docs = Array.from({ length: 6 }, (_, i) => ({ text: `s${i}` }));
    for (const host of [grpc, ws]) {
      const c = new Client({ host, apiKey: FILE_KEY });
      const started = Date.now();
      const out = await c.post('/slow', docs, { requestSize: 1, parameters: { delay: 300 } });
      const took = Date.now() - started;
      expect(out, host).toHaveLength(6);
      // 2 at a time: at least three rounds of 300 ms (all 6 at once would take one).
      expect(took, host).toBeGreaterThanOrEqual(850);
      c.close();
    }
  });
});

describe('limits on an executor', () => {
  let executor: MarieProcess;
  afterAll(() => {
    if (executor && executor.child.exitCode === null) executor.child.kill('SIGKILL');
  });

  it('tensor elements: a 1,000-element tensor passes, 1,001 are refused naming the field and the limit', async () => {
    executor = runMarie(
      executorArgs(REFERENCE, { protocols: ['grpc', 'http'] }, '--max-tensor-elements', '1000'),
    );
    const [g, h] = (await waitReady(executor, 2)).map((l) => l.slice('ready '.length));
    const c = new Client({ host: g! });
    const ok = await c.post('/tensor', [
      { tensor: new NdArray(new Float32Array(1000), [10, 100]) },
    ]);
    expect(ok[0]!.note).toBe('float32[10x100]');
    await expect(
      c.post('/tensor', [{ tensor: new NdArray(new Float32Array(1001), [1001]) }]),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(
        /docs\[0\]\.tensor: tensor of shape \[1001\] has 1001 elements, more than the limit of 1000 \(maxTensorElements\)/,
      ),
    });
    c.close();
    const res = await fetch(`${h}/tensor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: [{ tensor: Array.from({ length: 1001 }, () => 1) }] }),
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toMatch(
      /docs\[0\]\.tensor: .*maxTensorElements/,
    );
    executor.child.kill('SIGTERM');
    expect(await executor.exited).toEqual({ code: 0, signal: null });
  });

  it('a bad limit is a usage error naming the flag', async () => {
    const bad = runMarie(['executor', '--uses', REFERENCE, '--max-docs-per-request', '0']);
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toMatch(/--max-docs-per-request must be an integer >= 1/);
  });
});
