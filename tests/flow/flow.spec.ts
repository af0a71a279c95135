import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Client } from '@marie/client';
import { createDataRequest, MarieError, StatusCode } from '@marie/core';
import { DocList, LegacyDocument, NdArray } from '@marie/docs';
import { Flow } from '@marie/flow';
import { decodeDataRequest, encodeDataRequest } from '@marie/proto';
import { GrpcClient } from '@marie/transport-grpc';
import { HttpClient, WsClient } from '@marie/transport-http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const modules = [join(import.meta.dirname, 'fixtures', 'graph-executors.ts')];
const env = () => ({ MARIE_WORKSPACE: mkdtempSync(join(tmpdir(), 'marie-graph-')) });

describe('Flow and Gateway', () => {
  it('walks a graph with a join, a floating executor and a `when` filter', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'marie-float-')), 'floating.txt');
    await using flow = await new Flow({ protocol: 'grpc' })
      .add({ name: 'a', uses: 'Tagger', pyModules: modules, env: env() })
      .add({
        name: 'b',
        uses: 'Tagger',
        pyModules: modules,
        needs: 'a',
        when: { tags__kind: { $eq: 'invoice' } },
        env: env(),
      })
      .add({ name: 'c', uses: 'Tagger', pyModules: modules, needs: 'a', replicas: 2, env: env() })
      .add({ name: 'join', uses: 'Joiner', pyModules: modules, needs: ['b', 'c'], env: env() })
      .add({
        name: 'side',
        uses: 'Recorder',
        pyModules: modules,
        needs: 'a',
        floating: true,
        usesWith: { file: marker },
        env: env(),
      })
      .start();
    const client = new GrpcClient({
      host: '127.0.0.1',
      port: Number(flow.addresses[0]!.split(':').pop()),
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.send(
          createDataRequest({
            endpoint: '/index',
            requestId: `r${i}`,
            docs: [
              { id: `inv-${i}`, tags: { kind: 'invoice' } },
              { id: `memo-${i}`, tags: { kind: 'memo' } },
            ],
          }),
        ),
      ),
    );
    expect(answers).toHaveLength(20);
    for (const [i, res] of answers.entries()) {
      expect(res.header.status?.code ?? 0).toBe(StatusCode.SUCCESS);
      expect(res.header.requestId).toBe(`r${i}`);
      const byId = Object.fromEntries(
        (res.docs as { id: string; tags: Record<string, unknown> }[]).map((d) => [d.id, d.tags]),
      );
      // b saw only the invoice; c saw both; the join saw one request from each branch. Merged by
      // id, the first branch's fields win (Jina's reduce), so the invoice keeps b's tags.
      expect(byId[`inv-${i}`]).toEqual({
        kind: 'invoice',
        a: true,
        b: true,
        joined: [1, 2],
        seen: 2,
      });
      expect(byId[`memo-${i}`]).toMatchObject({ kind: 'memo', a: true, c: true, joined: [1, 2] });
      expect(byId[`memo-${i}`]).not.toHaveProperty('b');
      // The floating executor's answer never reaches the client.
      expect(byId[`inv-${i}`]).not.toHaveProperty('recorded');
      expect(res.routes[0]!.executor).toBe('gateway');
      expect(res.routes[0]!.startTime).toBeInstanceOf(Date);
    }
    for (
      let i = 0;
      i < 50 &&
      (!existsSync(marker) || readFileSync(marker, 'utf8').split('\n').filter(Boolean).length < 20);
      i++
    )
      await sleep(100);
    expect(new Set(readFileSync(marker, 'utf8').split('\n').filter(Boolean))).toEqual(
      new Set(answers.map((a) => a.header.requestId)),
    );
    // targetExecutor: only matching deployments process the request.
    const targeted = await client.send({
      ...createDataRequest({ endpoint: '/x', docs: [{ id: 'd', tags: { kind: 'memo' } }] }),
      header: { requestId: 't', execEndpoint: '/x', targetExecutor: '^c$' },
    });
    expect((targeted.docs as { tags: object }[])[0]!.tags).toEqual({ kind: 'memo', c: true });
    client.close();
  }, 120_000);

  it('stops at the failing hop and names its executor; a hop past timeoutSendMs times out on each protocol', async () => {
    await using flow = await new Flow({
      protocol: ['grpc', 'http', 'websocket'],
      timeoutSendMs: 500,
    })
      .add({ name: 'first', uses: 'Failer', pyModules: modules, env: env() })
      .add({ name: 'slow', uses: 'Sleeper', pyModules: modules, env: env() })
      .add({ name: 'last', uses: 'Tagger', pyModules: modules, env: env() })
      .start();
    const [grpcAddress, httpAddress, wsAddress] = flow.addresses;
    const client = new Client({ host: grpcAddress });
    const err = await client.post('/fail', [{}]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MarieError);
    expect((err as MarieError).remote).toMatchObject({
      name: 'Error',
      args: ['failed on purpose'],
      executor: 'Failer',
    });
    const ok = await client.post('/go', [{}], { parameters: { ms: 1 } });
    expect(ok[0]!.tags).toEqual({ last: true });

    const grpcErr = await client
      .post('/go', [{}], { parameters: { ms: 2000 } })
      .catch((e: unknown) => e);
    expect(grpcErr).toMatchObject({ code: 'deadline_exceeded' });
    const port = (a: string) => Number(a.split(':').pop());
    const http = await new HttpClient({ host: '127.0.0.1', port: port(httpAddress!) })
      .send(createDataRequest({ endpoint: '/go', parameters: { ms: 2000 } }))
      .catch((e: unknown) => e);
    expect(http).toMatchObject({
      code: 'deadline_exceeded',
      message: expect.stringContaining('HTTP 504'),
    });
    const ws = await new WsClient({ host: '127.0.0.1', port: port(wsAddress!) })
      .send(createDataRequest({ endpoint: '/go', parameters: { ms: 2000 } }))
      .catch((e: unknown) => e);
    expect(ws).toMatchObject({
      message: expect.stringMatching(/^WebSocket closed 1011: deadline_exceeded/),
    });
    client.close();
  }, 120_000);

  it('leaves documents nobody reads serialized on every hop: the answer carries the bytes sent', async () => {
    // gateway -> one -> two, neither method reading its documents: the gateway forwards their
    // bytes, each executor answers with the bytes it received (DocList.lazy), over gRPC and over
    // WebSocket bytes alike.
    await using flow = await new Flow({ protocol: ['grpc', 'websocket'] })
      .add({ name: 'one', uses: 'Passer', pyModules: modules, env: env() })
      .add({ name: 'two', uses: 'Passer', pyModules: modules, env: env() })
      .start();
    // Plain documents, encoded as they are: read and written again as LegacyDocuments, they would
    // come back with the type's defaults (tags, chunks...), so other bytes.
    const docs = [
      { id: 'd1', text: 'page', embedding: new NdArray(Float32Array.from([1.5, -2, 3])) },
      { id: 'd2', tags: { nested: { list: [1, 'two'] } } },
    ];
    const sent = encodeDataRequest(createDataRequest({ endpoint: '/x', docs }));
    const sentDocs = Buffer.from(decodeDataRequest(sent, { docsBytes: true }).docsBytes!);
    const grpcAnswer = await new Promise<Buffer>((resolve, reject) => {
      const raw = new grpc.Client(
        flow.addresses[0]!.replace('grpc://', ''),
        grpc.credentials.createInsecure(),
      );
      raw.makeUnaryRequest(
        '/jina.JinaSingleDataRequestRPC/process_single_data',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(sent),
        (err, value) => {
          raw.close();
          if (err) reject(err);
          else resolve(value!);
        },
      );
    });
    const wsAnswer = await new Promise<Buffer>((resolve, reject) => {
      const socket = new WebSocket(`${flow.addresses[1]}/`, 'bytes');
      socket.on('open', () => socket.send(sent));
      socket.on('message', (data: Buffer) => {
        socket.close();
        resolve(data);
      });
      socket.on('error', reject);
    });
    for (const [via, answer] of [
      ['grpc', decodeDataRequest(grpcAnswer, { docsBytes: true })],
      ['websocket', decodeDataRequest(wsAnswer, { docsBytes: true })],
    ] as const) {
      expect(answer.header.status, via).toBeUndefined();
      expect(answer.parameters.__results__, via).toEqual({
        one: { passed: true },
        two: { passed: true },
      });
      expect(Buffer.from(answer.docsBytes!), via).toEqual(sentDocs);
    }
  }, 120_000);

  it('forwards documents unread over gRPC and read over HTTP: tensors and chunks arrive intact', async () => {
    await using flow = await new Flow({ protocol: ['grpc', 'http', 'websocket'] })
      .add({ name: 'one', uses: 'Tagger', pyModules: modules, env: env() })
      .add({ name: 'two', uses: 'Tagger', pyModules: modules, env: env() })
      .start();
    const embedding = Float32Array.from({ length: 768 }, (_, i) => Math.sin(i));
    const doc = {
      id: 'd1',
      text: 'page',
      embedding: new NdArray(embedding),
      chunks: [{ id: 'c1', text: 'line', tags: { n: 1 } }],
    };
    for (const address of flow.addresses) {
      const client = new Client({ host: address });
      const [back] = await client.post('/x', new DocList(LegacyDocument, [doc]), {
        responseSchema: LegacyDocument,
      });
      expect(back!.tags, address).toEqual({ one: true, two: true });
      expect(back!.embedding!.equals(doc.embedding), address).toBe(true);
      expect(back!.chunks?.[0], address).toMatchObject({ id: 'c1', text: 'line', tags: { n: 1 } });
      client.close();
    }
  }, 120_000);
});
