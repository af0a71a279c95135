import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  createDataRequest,
  Executor,
  MarieError,
  type RequestContext,
  RequestHandler,
  requests,
} from '@marie/core';
import { DocList, type DocOf, defineDoc, type LegacyDocument, Type } from '@marie/docs';
import { decodeDataRequest, docarray, docListToProto, encodeDataRequest, jina } from '@marie/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcClient, GrpcServer, parseGrpcAddress } from './index.js';

// What is truly gRPC-specific; shared behaviour lives in tests/conformance.
const Text = defineDoc('Text', { text: Type.String({ default: '' }) });
type Text = DocOf<typeof Text>;

class Probe extends Executor {
  closed = 0;
  inFlight = 0;

  @requests({ on: '/echo', requestSchema: Text })
  echo(docs: DocList<Text>, ctx: RequestContext) {
    for (const d of docs) d.text = `${d.text}:${ctx.parameters.tag ?? ''}`;
  }

  /** Never looks at its documents. */
  @requests({ on: '/ignore', requestSchema: Text })
  ignore(_docs: DocList<Text>) {
    return { ignored: true };
  }

  @requests({ on: '/boom' })
  boom(): never {
    throw new TypeError('kaput');
  }

  @requests({ on: '/odd', requestSchema: Text })
  odd(docs: DocList<Text>) {
    if (docs.some((d) => d.text === 'odd')) throw new Error('odd one out');
  }

  @requests({ on: '/join' })
  join(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    return { parts: ctx.docsMatrix.map((m) => m.length), ids: docs.map((d) => d.id) };
  }

  @requests({ on: '/sleep' })
  async sleep(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
    this.inFlight++;
    await sleep(Number(ctx.parameters.ms ?? 100));
    this.inFlight--;
    return { slept: ctx.parameters.ms };
  }

  /** What a method saw of its signal: aborted while waiting on it, or found aborted when it first looked. */
  signals: string[] = [];

  @requests({ on: '/wait' })
  async wait(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
    // Looks at ctx.signal only after `look` ms: the signal is made on first use, and must then
    // already be aborted if the client gave up meanwhile.
    await sleep(Number(ctx.parameters.look ?? 0));
    if (ctx.signal.aborted) {
      this.signals.push('aborted before first look');
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      ctx.signal.addEventListener('abort', () => {
        this.signals.push('aborted while waiting');
        clearTimeout(t);
        resolve();
      });
    });
  }

  override async close() {
    this.closed++;
  }
}

function rawCall(
  port: number,
  path: string,
  bytes: Uint8Array,
): Promise<{ err: grpc.ServiceError | null; value?: Buffer; trailer?: grpc.Metadata }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    let trailer: grpc.Metadata | undefined;
    const call = client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      (err, value) => {
        setImmediate(() => {
          client.close();
          resolve({ err, value, trailer });
        });
      },
    );
    call.on('status', (s) => {
      trailer = s.metadata;
    });
  });
}

describe('gRPC transport', () => {
  let server: GrpcServer;
  let client: GrpcClient;
  let port: number;
  const probe = new Probe({ metas: { name: 'probe' } });

  beforeAll(async () => {
    server = new GrpcServer(new RequestHandler(probe), { host: '127.0.0.1', port: 0 });
    ({ port } = await server.start());
    client = new GrpcClient({ host: '127.0.0.1', port, poolSize: 3 });
  });
  afterAll(async () => {
    client.close();
    await server.shutdown();
  });

  it('marks an error answer with trailing metadata is-error: true, and only then', async () => {
    const bad = await rawCall(
      port,
      '/jina.JinaSingleDataRequestRPC/process_single_data',
      encodeDataRequest(createDataRequest({ endpoint: '/boom' })),
    );
    expect(bad.err).toBeNull();
    expect(bad.trailer?.get('is-error')).toEqual(['true']);
    const res = jina.DataRequestProto.decode(bad.value!);
    expect(res.header?.status).toMatchObject({
      code: 1,
      description: 'TypeError: kaput',
      exception: { name: 'TypeError', executor: 'Probe' },
    });
    const good = await rawCall(
      port,
      '/jina.JinaSingleDataRequestRPC/process_single_data',
      encodeDataRequest(createDataRequest({ endpoint: '/echo' })),
    );
    expect(good.trailer?.get('is-error')).toEqual([]);
  });

  it("aborts the method's signal when the client cancels, whenever the method first reads it", async () => {
    const call = (look: number) => {
      const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      return new Promise<grpc.ServiceError | null>((resolve) => {
        raw.makeUnaryRequest(
          '/jina.JinaSingleDataRequestRPC/process_single_data',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from(
            encodeDataRequest(createDataRequest({ endpoint: '/wait', parameters: { look } })),
          ),
          { deadline: Date.now() + 100 },
          (err) => {
            raw.close();
            resolve(err);
          },
        );
      });
    };
    expect((await call(0))?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect((await call(300))?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await sleep(400);
    expect(probe.signals).toEqual(['aborted while waiting', 'aborted before first look']);
  });

  it('keeps concurrent answers apart (they are encoded into one lent buffer)', async () => {
    // 40 unary calls at once, and 40 messages on one Call stream, each answer large (300 kB)
    // and different: every answer must be its own request's. This guards what the lent buffer
    // relies on: grpc-js copies a serialized answer into its frame at once. (Checked: with that
    // copy deferred by a setImmediate inside grpc-js, this test fails.)
    const text = (i: number) => `${i}:`.padEnd(300_000, String.fromCharCode(97 + (i % 26)));
    const unary = Array.from({ length: 40 }, (_, i) =>
      client.send(
        createDataRequest({ endpoint: '/echo', docs: [{ text: text(i) }], parameters: { tag: i } }),
      ),
    );
    const streamed = client.post(
      '/echo',
      Array.from({ length: 40 }, (_, i) => ({ text: text(100 + i) })),
      { requestSize: 1, parameters: { tag: 's' } },
    );
    const answers = await Promise.all(unary);
    expect(answers.map((res) => (res.docs[0] as { text: string }).text)).toEqual(
      Array.from({ length: 40 }, (_, i) => `${text(i)}:${i}`),
    );
    expect((await streamed).map((d) => d.text)).toEqual(
      Array.from({ length: 40 }, (_, i) => `${text(100 + i)}:s`),
    );
  });

  it('answers garbage with INVALID_ARGUMENT and keeps serving', async () => {
    const res = await rawCall(
      port,
      '/jina.JinaSingleDataRequestRPC/process_single_data',
      new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]),
    );
    expect(res.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(res.err?.details).toMatch(/^request: not a DataRequestProto/);
    expect(await client.isReady()).toBe(true);
  });

  it('answers documents its method never read with the bytes they came in, and checks them at the door', async () => {
    const docs = new DocList(Text, [{ text: 'kept' }, { text: 'as sent' }]);
    const sent = encodeDataRequest(createDataRequest({ endpoint: '/ignore', docs }));
    const res = await rawCall(port, '/jina.JinaSingleDataRequestRPC/process_single_data', sent);
    expect(res.err).toBeNull();
    const answer = decodeDataRequest(res.value!, { docsBytes: true });
    expect(answer.parameters.__results__).toEqual({ probe: { ignored: true } });
    expect(Buffer.from(answer.docsBytes!)).toEqual(
      Buffer.from(decodeDataRequest(sent, { docsBytes: true }).docsBytes!),
    );
    // Unread is not unchecked: documents whose bytes do not read are refused before any method.
    const list = docListToProto(docs);
    list.docs[0]!.data.text = {
      ndarray: { dense: { buffer: new Uint8Array(3), shape: [1], dtype: '<f4' } },
      type: 'ndarray',
    };
    const bad = jina.DataRequestProto.encode({
      header: { requestId: 'r', execEndpoint: '/ignore' },
      routes: [],
      data: { docs: list },
    }).finish();
    const refused = await rawCall(port, '/jina.JinaSingleDataRequestRPC/process_single_data', bad);
    expect(refused.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.err?.details).toBe(
      'docs[0].text: tensor of shape [1] and dtype float32 needs 4 bytes, got 3',
    );
    // A method that reads them validates them against its schema then, naming the field.
    list.docs[0]!.data.text = { integer: 3 };
    const wrong = await client.send({
      ...createDataRequest({ endpoint: '/echo' }),
      docsBytes: docarray.DocListProto.encode(list).finish(),
    });
    expect(wrong.header.status?.description).toBe(
      'ValidationError: docs[0].text: expected string, got number',
    );
  });

  it('posts in requestSize parts over the Call stream, in order', async () => {
    const docs = new DocList(
      Text,
      Array.from({ length: 25 }, (_, i) => ({ text: `d${i}` })),
    );
    const out = await client.post('/echo', docs, {
      requestSize: 4,
      parameters: { tag: 'x' },
      responseSchema: Text,
    });
    expect(out.docType).toBe(Text);
    expect(out.get('text')).toEqual(docs.map((d) => `${d.text}:x`));
    expect(out.get('id')).toEqual(docs.get('id'));
  });

  it('raises a remote error as a MarieError with the remote exception', async () => {
    const err = await client.post('/boom', [{}]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MarieError);
    expect((err as MarieError).remote).toMatchObject({
      name: 'TypeError',
      args: ['kaput'],
      executor: 'Probe',
    });
  });

  it('continues on error when asked, leaving the failed part out', async () => {
    const errors: MarieError[] = [];
    const docs = [{ text: 'a' }, { text: 'odd' }, { text: 'c' }];
    const out = await client.post('/odd', docs, {
      requestSize: 1,
      continueOnError: true,
      onError: (e) => errors.push(e),
    });
    expect(out.map((d) => d.text)).toEqual(['a', 'c']);
    expect(errors.map((e) => e.remote?.args)).toEqual([['odd one out']]);
  });

  it('gives up at the deadline with deadline_exceeded, and on abort with canceled', async () => {
    await expect(
      client.post('/sleep', [], { parameters: { ms: 300 }, timeoutMs: 50 }),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' });
    const controller = new AbortController();
    const pending = client.post('/sleep', [], {
      parameters: { ms: 300 },
      signal: controller.signal,
    });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'canceled' });
  });

  it('joins several requests with process_data: docsMatrix holds each, docs are reduced by id', async () => {
    const a = createDataRequest({ endpoint: '/join', docs: [{ id: '1' }, { id: '2' }] });
    const b = createDataRequest({ endpoint: '/join', docs: [{ id: '2' }, { id: '3' }] });
    const list = jina.DataRequestListProto.encode({
      requests: [a, b].map((r) => jina.DataRequestProto.decode(encodeDataRequest(r))),
    }).finish();
    const res = await rawCall(port, '/jina.JinaDataRequestRPC/process_data', list);
    expect(res.err).toBeNull();
    const answer = jina.DataRequestProto.decode(res.value!);
    expect(answer.parameters?.__results__?.probe).toEqual({ parts: [2, 2], ids: ['1', '2', '3'] });
    const empty = await rawCall(port, '/jina.JinaDataRequestRPC/process_data', new Uint8Array(0));
    expect(empty.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('answers in arrival order when asked, request order by default', async () => {
    const docs = [{ text: 'a' }, { text: 'b' }, { text: 'c' }];
    const ordered = await client.post('/echo', docs, { requestSize: 1 });
    expect(ordered.map((d) => d.text)).toEqual(['a:', 'b:', 'c:']);
    const arrived = await client.post('/echo', docs, { requestSize: 1, resultsInOrder: false });
    expect(arrived.map((d) => d.text).sort()).toEqual(['a:', 'b:', 'c:']);
  });

  it('answers health, dry run, discovery, _status and snapshot without support', async () => {
    expect(await client.isReady()).toBe(true);
    expect(await client.dryRun()).toBe(true);
    const endpoints = await client.endpoints();
    expect(endpoints.endpoints).toEqual([
      '/echo',
      '/ignore',
      '/boom',
      '/odd',
      '/join',
      '/sleep',
      '/wait',
      '_jina_dry_run_',
    ]);
    expect(endpoints.schemas?.['/echo']).toMatchObject({
      input: { name: 'Text', model: { title: 'Text' } },
      is_generator: false,
    });
    const info = await client.info();
    expect(info.jina).toMatchObject({
      executor: 'Probe',
      name: 'probe',
      'marie-runtime': 'typescript',
    });
    const snap = await rawCall(port, '/jina.JinaExecutorSnapshot/snapshot', new Uint8Array(0));
    expect(jina.SnapshotStatusProto.decode(snap.value!).status).toBe(
      jina.SnapshotStatusProto_Status.NOT_FOUND,
    );
    const restore = await rawCall(
      port,
      '/jina.JinaExecutorRestore/restore',
      jina.RestoreSnapshotCommand.encode({ snapshotFile: 'x' }).finish(),
    );
    expect(jina.RestoreSnapshotStatusProto.decode(restore.value!).status).toBe(
      jina.RestoreSnapshotStatusProto_Status.FAILED,
    );
  });

  it('lists every service through reflection', async () => {
    const reflection = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    // ServerReflectionRequest{list_services: "*"} is field 7; the answer's list_services_response is field 6.
    const request = Buffer.from([0x3a, 0x01, 0x2a]);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const call = reflection.makeBidiStreamRequest(
        '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      call.on('data', (b: Buffer) => {
        resolve(b);
        call.end();
      });
      call.on('error', reject);
      call.write(request);
    });
    reflection.close();
    const names = [...answer.toString('latin1').matchAll(/(jina|grpc)\.[\w.]+/g)].map((m) => m[0]);
    for (const service of [
      'jina.JinaSingleDataRequestRPC',
      'jina.JinaDataRequestRPC',
      'jina.JinaRPC',
      'jina.JinaSingleDocumentRequestRPC',
      'jina.JinaDiscoverEndpointsRPC',
      'jina.JinaInfoRPC',
      'grpc.health.v1.Health',
    ]) {
      expect(names).toContain(service);
    }
  });

  it('accepts keepalive pings from an idle client', async () => {
    const pinger = new GrpcClient({ host: '127.0.0.1', port, keepaliveMs: 200, poolSize: 1 });
    expect(await pinger.isReady()).toBe(true);
    await sleep(1500); // ~7 pings while idle; a server enforcing ping limits would hang up (GOAWAY)
    expect(
      await pinger
        .post('/echo', [{ text: 'still' }], { parameters: { tag: 'up' } })
        .then((d) => d[0]!.text),
    ).toBe('still:up');
    pinger.close();
  });

  it('parses addresses', () => {
    expect(parseGrpcAddress('grpc://127.0.0.1:5000')).toEqual({
      host: '127.0.0.1',
      port: 5000,
      tls: false,
    });
    expect(parseGrpcAddress('grpcs://example.invalid')).toEqual({
      host: 'example.invalid',
      port: 54321,
      tls: true,
    });
    expect(parseGrpcAddress('[::1]:7')).toEqual({ host: '::1', port: 7, tls: false });
    expect(() => parseGrpcAddress('http://x:1')).toThrow('not a gRPC address');
  });
});

describe('gRPC snapshot and restore', () => {
  it("uses the executor's own snapshot() and restore() when it has them", async () => {
    class Stateful extends Probe {
      restored = '';
      async snapshot() {
        return '/tmp/state.bin';
      }
      async restore(file: string) {
        this.restored = file;
      }
    }
    const ex = new Stateful();
    const server = new GrpcServer(new RequestHandler(ex), { host: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    const snap = jina.SnapshotStatusProto.decode(
      (await rawCall(port, '/jina.JinaExecutorSnapshot/snapshot', new Uint8Array(0))).value!,
    );
    expect(snap).toMatchObject({
      status: jina.SnapshotStatusProto_Status.SUCCEEDED,
      snapshotFile: '/tmp/state.bin',
    });
    const progress = await rawCall(
      port,
      '/jina.JinaExecutorSnapshotProgress/snapshot_status',
      jina.SnapshotId.encode(snap.id!).finish(),
    );
    expect(jina.SnapshotStatusProto.decode(progress.value!).status).toBe(
      jina.SnapshotStatusProto_Status.SUCCEEDED,
    );
    const restore = await rawCall(
      port,
      '/jina.JinaExecutorRestore/restore',
      jina.RestoreSnapshotCommand.encode({ snapshotFile: '/tmp/state.bin' }).finish(),
    );
    expect(jina.RestoreSnapshotStatusProto.decode(restore.value!).status).toBe(
      jina.RestoreSnapshotStatusProto_Status.SUCCEEDED,
    );
    expect(ex.restored).toBe('/tmp/state.bin');
    await server.shutdown();
  });
});

describe('gRPC server lifecycle', () => {
  it('shuts down gracefully: NOT_SERVING, in-flight calls finish, close() once', async () => {
    const probe = new Probe();
    const server = new GrpcServer(new RequestHandler(probe), { host: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    const client = new GrpcClient({ host: '127.0.0.1', port });
    const inflight = client.send(
      createDataRequest({ endpoint: '/sleep', parameters: { ms: 300 } }),
    );
    await sleep(50);
    expect(probe.inFlight).toBe(1);
    const stopping = server.shutdown();
    await sleep(20);
    expect(await client.isReady({ timeoutMs: 500 })).toBe(false);
    const res = await inflight;
    expect((res.parameters.__results__ as any).Probe).toEqual({ slept: 300 });
    await Promise.all([stopping, server.shutdown()]);
    expect(probe.closed).toBe(1);
    client.close();
  });

  it('serves TLS with a certificate and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'marie-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = new GrpcServer(new RequestHandler(new Probe()), {
      host: '127.0.0.1',
      port: 0,
      tls: { cert, key: readFileSync(join(dir, 'key.pem')) },
    });
    const { port } = await server.start();
    const secure = new GrpcClient({ host: 'localhost', port, tls: { ca: cert } });
    expect((await secure.post('/echo', [{ text: 'tls' }]))[0]!.text).toBe('tls:');
    const plain = new GrpcClient({ host: '127.0.0.1', port });
    expect(await plain.isReady({ timeoutMs: 1000 })).toBe(false);
    secure.close();
    plain.close();
    await server.shutdown();
  });
});
