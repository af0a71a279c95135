// The Processor contract (packages/core/src/processor.ts), kept by both processors every transport
// serves: an executor's RequestHandler, and a Flow's Gateway in front of a real executor over gRPC.
// An answer resolves, failures that have one included; only a request with no answer rejects, and
// then with a MarieError whose code says why.
import { createServer } from 'node:net';
import {
  createDataRequest,
  type DataRequest,
  MarieError,
  type Processor,
  RequestHandler,
  type SingleDocumentRequest,
  StatusCode,
} from '@marie/core';
import { Gateway, RemoteDeployment } from '@marie/flow';
import { GrpcServer } from '@marie/transport-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceExecutor } from './reference-executor.js';

/** What a request with no answer rejects with: a MarieError of this code, nothing else. */
async function rejection(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (err) {
    expect(err).toBeInstanceOf(MarieError);
    return (err as MarieError).code;
  }
  throw new Error('resolved, where no answer was expected');
}

async function streamed(
  processor: Processor,
  request: SingleDocumentRequest,
): Promise<SingleDocumentRequest[]> {
  const parts: SingleDocumentRequest[] = [];
  for await (const part of processor.streamDoc(request)) parts.push(part);
  return parts;
}

const single = (endpoint: string, document: Record<string, unknown>): SingleDocumentRequest => ({
  header: { requestId: 'r1', execEndpoint: endpoint },
  parameters: {},
  routes: [],
  document,
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

let server: GrpcServer;
let gateway: Gateway;
let unreachable: Gateway;
const remotes: RemoteDeployment[] = [];

beforeAll(async () => {
  server = new GrpcServer(new RequestHandler(new ReferenceExecutor()), {
    host: '127.0.0.1',
    port: 0,
  });
  const { port } = await server.start();
  const ref = new RemoteDeployment({ name: 'ref', addresses: `127.0.0.1:${port}` });
  const gone = new RemoteDeployment({
    name: 'gone',
    addresses: `127.0.0.1:${await closedPort()}`,
    retries: 0,
  });
  remotes.push(ref, gone);
  await ref.start();
  gateway = new Gateway([{ name: 'ref', needs: ['gateway'], target: ref }]);
  unreachable = new Gateway([{ name: 'gone', needs: ['gateway'], target: gone }]);
});

afterAll(async () => {
  await Promise.all(remotes.map((r) => r.close()));
  await server.shutdown(1000);
});

const processors: [string, () => Processor][] = [
  ['RequestHandler', () => new RequestHandler(new ReferenceExecutor())],
  ['Gateway', () => gateway],
];

describe.each(processors)('the Processor contract: %s', (_name, make) => {
  it("resolves with an executor's failure as an answer, its status ERROR", async () => {
    const res = await make().handle(createDataRequest({ endpoint: '/fail', docs: [{}] }));
    expect(res.header.status).toMatchObject({
      code: StatusCode.ERROR,
      exception: { name: 'ValueError', executor: 'ReferenceExecutor' },
    });
  });

  it('resolves with documents of the wrong shape as an answer naming the field', async () => {
    const res = await make().handle(createDataRequest({ endpoint: '/upper', docs: [{ text: 5 }] }));
    expect(res.header.status?.description).toBe(
      'ValidationError: docs[0].text: expected string, got number',
    );
  });

  it('ends a stream whose generator fails with an ERROR part, not a throw', async () => {
    const parts = await streamed(make(), single('/words', { text: 7 }));
    expect(parts.at(-1)!.header.status?.code).toBe(StatusCode.ERROR);
  });

  it("hands back the answer's documents with their type, so no server looks the endpoint up", async () => {
    const res: DataRequest = await make().handle(
      createDataRequest({ endpoint: '/length', docs: [{ text: 'abc' }] }),
    );
    expect(res.header.status).toBeUndefined();
    expect(res.docs[0]).toMatchObject({ text: 'abc', length: 3 });
  });
});

describe('the Processor contract: requests with no answer', () => {
  it('RequestHandler: rejects joining no requests (invalid_argument)', async () => {
    const handler = new RequestHandler(new ReferenceExecutor());
    expect(await rejection(handler.handleMany([]))).toBe('invalid_argument');
  });

  it('Gateway: rejects a target_executor that is no regular expression (invalid_argument)', async () => {
    const req = createDataRequest({ endpoint: '/upper', targetExecutor: '(' });
    expect(await rejection(gateway.handle(req))).toBe('invalid_argument');
  });

  it('Gateway: rejects when no executor can be reached (unavailable), streams too', async () => {
    const req = createDataRequest({ endpoint: '/upper', docs: [{ text: 'a' }] });
    expect(await rejection(unreachable.handle(req))).toBe('unavailable');
    expect(await rejection(streamed(unreachable, single('/upper', { text: 'a' })))).toBe(
      'unavailable',
    );
  });

  it("Gateway: rejects an executor's answer it cannot read as internal, not as a bare error", async () => {
    // A peer that answers with documents no DocListProto reader accepts.
    const garbled = async (req: DataRequest): Promise<DataRequest> => ({
      ...req,
      docs: [],
      docsBytes: Uint8Array.of(0x0a, 0xff, 0xff, 0xff),
    });
    const peer = new Gateway([
      {
        name: 'broken',
        needs: ['gateway'],
        target: { send: garbled, sendMany: (rs) => garbled(rs[0]!) },
      },
    ]);
    const req = createDataRequest({ endpoint: '/upper', docs: [{ text: 'a' }] });
    expect(await rejection(peer.handle(req))).toBe('internal');
  });

  it('Gateway: rejects joining several requests (unimplemented)', async () => {
    const req = createDataRequest({ endpoint: '/upper' });
    expect(await rejection(gateway.handleMany([req, req]))).toBe('unimplemented');
  });
});
