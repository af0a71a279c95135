import * as grpc from '@grpc/grpc-js';
import { RequestHandler } from '@marie/core';
import { DocList } from '@marie/docs';
import { type docarray, docListToProto, jina } from '@marie/proto';
import { GrpcClient, GrpcServer } from '@marie/transport-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceExecutor, TextIn } from '../conformance/reference-executor.js';
import { rng } from '../support/fuzz.js';
import { PROTO_SEEDS } from './seeds.js';

const PATH = '/jina.JinaSingleDataRequestRPC/process_single_data';

interface Outcome {
  code: number;
  details?: string;
  answer?: jina.DataRequestProto;
}

function send(client: grpc.Client, bytes: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      { deadline: Date.now() + 10_000 },
      (err, value?: Buffer) => {
        if (err) resolve({ code: err.code, details: err.details });
        else resolve({ code: grpc.status.OK, answer: jina.DataRequestProto.decode(value!) });
      },
    );
  });
}

describe('gRPC bad input', () => {
  let server: GrpcServer;
  let raw: grpc.Client;
  let client: GrpcClient;

  beforeAll(async () => {
    server = new GrpcServer(new RequestHandler(new ReferenceExecutor({ metas: { name: 'ref' } })), {
      host: '127.0.0.1',
      port: 0,
    });
    const { port } = await server.start();
    raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    client = new GrpcClient({ host: '127.0.0.1', port });
  });
  afterAll(async () => {
    raw.close();
    client.close();
    await server.shutdown();
  });

  it('survives 1,000 random and mutated messages, answering each with INVALID_ARGUMENT or a status', async () => {
    // The same 1,000 messages on every run.
    const random = rng(20261127);
    const int = (n: number) => Math.floor(random() * n);
    const seeds = PROTO_SEEDS;
    const messages: Uint8Array[] = [];
    for (let i = 0; i < 300; i++)
      messages.push(Uint8Array.from({ length: int(256) }, () => int(256)));
    for (let i = 0; i < 700; i++) {
      const m = Buffer.from(seeds[i % seeds.length]!);
      switch (i % 4) {
        case 0: // flip bytes
          for (let k = 0; k < 1 + int(8); k++) m[int(m.length)] = int(256);
          messages.push(m);
          break;
        case 1: // truncate
          messages.push(m.subarray(0, int(m.length)));
          break;
        case 2: // splice random bytes in
          messages.push(
            Buffer.concat([
              m.subarray(0, int(m.length)),
              Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256))),
              m.subarray(int(m.length)),
            ]),
          );
          break;
        default: // duplicate a slice
          messages.push(Buffer.concat([m, m.subarray(int(m.length))]));
      }
    }
    expect(messages).toHaveLength(1000);

    const tally = { invalidArgument: 0, answeredOk: 0, answeredError: 0 };
    for (let i = 0; i < messages.length; i += 25) {
      const outcomes = await Promise.all(messages.slice(i, i + 25).map((m) => send(raw, m)));
      for (const o of outcomes) {
        if (o.code === grpc.status.INVALID_ARGUMENT) {
          expect(o.details).toMatch(/^(request|docs\[\d+\][\w.[\]]*|data\.docs_bytes|[\w.[\]]+): /);
          tally.invalidArgument++;
        } else {
          // Anything else must be a proper answer: never INTERNAL, UNKNOWN or a dropped connection.
          expect(o.code, o.details).toBe(grpc.status.OK);
          if (o.answer!.header?.status?.code === 1) {
            expect(o.answer!.header.status.description).not.toBe('');
            tally.answeredError++;
          } else tally.answeredOk++;
        }
      }
    }
    console.log(`bad input tally: ${JSON.stringify(tally)}`);
    expect(tally.invalidArgument + tally.answeredOk + tally.answeredError).toBe(1000);
    expect(tally.invalidArgument).toBeGreaterThan(100);
    // Still serving, and correctly.
    expect(await client.isReady()).toBe(true);
    const docs = await client.post('/upper', [{ text: 'after' }], { responseSchema: TextIn });
    expect(docs[0]!.text).toBe('AFTER');
  }, 120_000);

  it('names the field of a document that does not match the schema', async () => {
    const list = docListToProto(new DocList(TextIn, [{ text: 'ok' }]));
    list.docs[0]!.data.text = { integer: 3 };
    const res = await send(
      raw,
      jina.DataRequestProto.encode({
        header: { requestId: 'r', execEndpoint: '/upper' },
        routes: [],
        data: { docs: list },
      }).finish(),
    );
    expect(res.code).toBe(grpc.status.OK);
    expect(res.answer!.header!.status).toMatchObject({
      code: 1,
      description: 'ValidationError: docs[0].text: expected string, got number',
    });
  });

  it('names the field of a tensor whose dtype and shape do not match its bytes', async () => {
    const doc: docarray.DocProto = {
      data: {
        tensor: {
          ndarray: { dense: { buffer: new Uint8Array(10), shape: [3], dtype: '<f4' } },
          type: 'ndarray',
        },
      },
    };
    const res = await send(
      raw,
      jina.DataRequestProto.encode({
        header: { requestId: 'r', execEndpoint: '/tensor' },
        routes: [],
        data: { docs: { docs: [doc] } },
      }).finish(),
    );
    expect(res.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(res.details).toBe(
      'docs[0].tensor: tensor of shape [3] and dtype float32 needs 12 bytes, got 10',
    );
    const wrongDtype: docarray.DocProto = {
      data: {
        tensor: {
          ndarray: { dense: { buffer: new Uint8Array(8), shape: [2], dtype: 'complex64' } },
        },
      },
    };
    const res2 = await send(
      raw,
      jina.DataRequestProto.encode({
        header: { requestId: 'r', execEndpoint: '/tensor' },
        routes: [],
        data: { docs: { docs: [wrongDtype] } },
      }).finish(),
    );
    expect(res2.details).toBe('docs[0].tensor: unsupported dtype "complex64"');
  });

  it('refuses an integer above int32 and keeps serving', async () => {
    // NodeProto{integer: 2^40} inside DocProto{data: {n: ...}} inside the request's DocListProto.
    const node = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    const entry = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6e, 0x12, node.length]), node]);
    const docProto = Buffer.concat([Buffer.from([0x0a, entry.length]), entry]);
    const docList = Buffer.concat([Buffer.from([0x0a, docProto.length]), docProto]);
    const content = Buffer.concat([Buffer.from([0x0a, docList.length]), docList]);
    const header = jina.HeaderProto.encode({ requestId: 'r', execEndpoint: '/nowhere' }).finish();
    const msg = Buffer.concat([
      Buffer.from([0x0a, header.length]),
      header,
      Buffer.from([0x22, content.length]),
      content,
    ]);
    const res = await send(raw, msg);
    expect(res.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(res.details).toBe(
      'docs[0].n: NodeProto.integer: 1099511627776 is outside the int32 range',
    );
    expect(await client.isReady()).toBe(true);
  });
});
