import { setTimeout as sleep } from 'node:timers/promises';
import {
  createDataRequest,
  Executor,
  type RequestContext,
  RequestHandler,
  requests,
} from '@marie/core';
import {
  type DocList,
  type DocOf,
  defineDoc,
  Embedding,
  type LegacyDocument,
  Type,
} from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HttpServer, WsClient } from './index.js';

const Text = defineDoc('Text', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
});
type Text = DocOf<typeof Text>;

class Web extends Executor {
  aborted = 0;

  @requests({
    on: '/upper',
    requestSchema: Text,
    parametersSchema: Type.Object({ n: Type.Integer({ default: 1 }) }, { title: 'UpperParams' }),
  })
  upper(docs: DocList<Text>, ctx: RequestContext<{ n: number }>) {
    for (const d of docs) d.text = d.text.toUpperCase().repeat(ctx.parameters.n);
  }

  @requests({ on: '/boom' })
  boom(): never {
    throw new RangeError('out of range');
  }

  @requests({ on: '/wait' })
  async wait(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Number(ctx.parameters.ms ?? 2000));
      ctx.signal.addEventListener('abort', () => {
        this.aborted++;
        clearTimeout(t);
        resolve();
      });
    });
  }

  @requests({ on: '/words', requestSchema: Text })
  async *words(doc: Text) {
    for (const w of doc.text.split(' ')) yield { text: w };
  }
}

describe('HTTP transport', () => {
  const executor = new Web({ metas: { name: 'web' } });
  let server: HttpServer;
  let base: string;

  beforeAll(async () => {
    server = new HttpServer(new RequestHandler(executor), {
      host: '127.0.0.1',
      port: 0,
      bodyLimit: 64 * 1024,
    });
    base = `http://127.0.0.1:${(await server.start()).port}`;
  });
  afterAll(() => server.shutdown(1000));

  const post = async (path: string, body: unknown, raw = false) => {
    const res = await request(`${base}${path}`, {
      method: 'POST',
      body: raw ? (body as string) : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    return { status: res.statusCode, json: (await res.body.json()) as any };
  };

  it('answers POST /<endpoint> with data, parameters, header and routes; camelCase keys accepted', async () => {
    const { status, json } = await post('/upper', {
      data: [{ text: 'ab', embedding: [0.5, 1] }],
      parameters: { n: 2 },
      header: { requestId: 'r-1' },
    });
    expect(status).toBe(200);
    expect(json.data).toMatchObject([{ text: 'ABAB', embedding: [0.5, 1] }]);
    expect(json.header).toMatchObject({ request_id: 'r-1', exec_endpoint: '/upper' });
    expect(json.routes).toEqual([{ executor: 'web' }]);
    const single = await post('/upper', { data: { text: 'x' } });
    expect(single.json.data).toMatchObject([{ text: 'X' }]);
    const viaPost = await post('/post', { data: [{ text: 'y' }], exec_endpoint: '/upper' });
    expect(viaPost.json.data).toMatchObject([{ text: 'Y' }]);
  });

  it('maps errors: 400 malformed JSON, 422 naming the field, 500 with the exception, 413, 404', async () => {
    expect((await post('/upper', '{"data": [', true)).status).toBe(400);
    const bad = await post('/upper', { data: [{ text: 'ok' }, { text: 3 }] });
    expect(bad).toMatchObject({
      status: 422,
      json: { detail: 'docs[1].text: expected string, got number' },
    });
    const badParam = await post('/upper', { data: [], parameters: { n: 'two' } });
    expect(badParam).toMatchObject({
      status: 422,
      json: { detail: 'parameters.n: expected integer, got string "two"' },
    });
    const notList = await post('/upper', { data: ['text'] });
    expect(notList).toMatchObject({
      status: 422,
      json: { detail: 'data[0]: expected a document object' },
    });
    const boom = await post('/boom', { data: [] });
    expect(boom.status).toBe(500);
    expect(boom.json).toMatchObject({
      detail: 'RangeError: out of range',
      exception: { name: 'RangeError', args: ['out of range'], executor: 'Web' },
    });
    expect(boom.json.exception.stacks.length).toBeGreaterThan(1);
    const big = await post('/upper', { data: [{ text: 'x'.repeat(70 * 1024) }] });
    expect(big.status).toBe(413);
    expect((await post('/nowhere', { data: [] })).status).toBe(404);
  });

  it('serves /openapi.json with every endpoint and its document models, and Swagger UI', async () => {
    const res = await request(`${base}/openapi.json`);
    const doc = (await res.body.json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/upper', '/boom', '/wait', '/words', '/post'])
      expect(doc.paths[path]?.post, path).toBeDefined();
    expect(doc.paths['/words'].get).toBeDefined();
    expect(doc.components.schemas.Text).toMatchObject({
      title: 'Text',
      type: 'object',
      properties: { text: { type: 'string' } },
    });
    expect(doc.components.schemas.UpperParams).toMatchObject({
      properties: { n: { type: 'integer', default: 1 } },
    });
    const body = doc.paths['/upper'].post.requestBody.content['application/json'].schema;
    expect(JSON.stringify(body)).toContain('#/components/schemas/Text');
    const ui = await request(`${base}/docs`);
    expect([200, 302]).toContain(ui.statusCode);
    await ui.body.dump();
  });

  it('answers GET / (health), /status and /dry_run', async () => {
    expect((await request(`${base}/`)).statusCode).toBe(200);
    const status = (await (await request(`${base}/status`)).body.json()) as any;
    expect(status).toMatchObject({
      name: 'web',
      executor: 'Web',
      endpoints: ['/upper', '/boom', '/wait', '/words', '_jina_dry_run_'],
    });
    expect(await (await request(`${base}/dry_run`)).body.json()).toEqual({
      code: 'SUCCESS',
      description: '',
    });
  });

  it('streams generator endpoints as Server-Sent Events', async () => {
    const res = await request(`${base}/words?text=${encodeURIComponent('one two')}`);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const text = await res.body.text();
    const events = text
      .trim()
      .split('\n\n')
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}'),
      }));
    expect(events.map((e) => e.event)).toEqual(['update', 'update', 'end']);
    expect(events.map((e) => e.data.text)).toEqual(['one', 'two', undefined]);
  });

  it("aborts the handler's signal when the client disconnects", async () => {
    const controller = new AbortController();
    const pending = request(`${base}/wait`, {
      method: 'POST',
      body: JSON.stringify({ data: [], parameters: { ms: 5000 } }),
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
    });
    await sleep(100);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await sleep(100);
    expect(executor.aborted).toBe(1);
  });
});

describe('WebSocket transport', () => {
  let server: HttpServer;
  let port: number;

  beforeAll(async () => {
    server = new HttpServer(new RequestHandler(new Web({ metas: { name: 'web' } })), {
      protocol: 'websocket',
      host: '127.0.0.1',
      port: 0,
    });
    ({ port } = await server.start());
  });
  afterAll(() => server.shutdown(1000));

  it('carries many requests in flight on one socket, each answer with its request_id', async () => {
    const client = new WsClient({ host: '127.0.0.1', port, subprotocol: 'json' });
    const reqs = Array.from({ length: 20 }, (_, i) =>
      createDataRequest({ endpoint: '/upper', docs: [{ text: `t${i}` }], requestId: `req-${i}` }),
    );
    const answers = await client.exchange(reqs);
    expect(answers.map((a) => a.header.requestId)).toEqual(reqs.map((r) => r.header.requestId));
    expect(answers.map((a) => (a.docs as Text[])[0]!.text)).toEqual(reqs.map((_, i) => `T${i}`));
    const bytes = new WsClient({ host: '127.0.0.1', port, subprotocol: 'bytes' });
    const viaBytes = await bytes.exchange(reqs.slice(0, 3));
    expect(viaBytes.map((a) => (a.docs as Text[])[0]!.text)).toEqual(['T0', 'T1', 'T2']);
  });

  const closeOf = (subprotocol: string, frames: (string | Buffer)[]) =>
    new Promise<{ code: number; reason: string }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, subprotocol);
      ws.on('open', () => {
        for (const f of frames) ws.send(f);
      });
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      ws.on('error', reject);
    });

  it('closes with 1011 and a short reason on garbage frames, 1000 after {} or 0x00', async () => {
    expect(await closeOf('json', ['{not json'])).toEqual({ code: 1011, reason: 'malformed JSON' });
    expect(await closeOf('json', [Buffer.from([1, 2, 3])])).toEqual({
      code: 1011,
      reason: 'the json sub-protocol takes text frames',
    });
    expect(await closeOf('json', ['[1,2]'])).toEqual({
      code: 1011,
      reason: 'body: expected a JSON object',
    });
    expect(await closeOf('bytes', ['hello'])).toEqual({
      code: 1011,
      reason: 'the bytes sub-protocol takes binary frames',
    });
    expect((await closeOf('bytes', [Buffer.from([0x0a, 0xff, 0xff])])).reason).toMatch(
      /^request: not a DataRequestProto/,
    );
    expect(await closeOf('json', ['{}'])).toEqual({ code: 1000, reason: 'end of stream' });
    expect(
      await closeOf('bytes', [
        Buffer.from(encodeDataRequest(createDataRequest({ endpoint: '/upper' }))),
        Buffer.from([0]),
      ]),
    ).toEqual({ code: 1000, reason: 'end of stream' });
    // Still serving after all that.
    expect(await new WsClient({ host: '127.0.0.1', port }).isReady()).toBe(true);
  });
});
