import * as grpc from '@grpc/grpc-js';
import { createDataRequest } from '@marie/core';
import { DocList, defineDoc, Embedding, Type } from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';

const BenchDoc = defineDoc('BenchDoc', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
});
const big = Buffer.from(
  encodeDataRequest(
    createDataRequest({
      endpoint: '/noop',
      docs: new DocList(
        BenchDoc,
        Array.from({ length: 64 }, (_, i) => ({
          text: `doc ${i}`,
          embedding: Float32Array.from({ length: 768 }, (_, j) => Math.sin(j)),
        })),
      ),
    }),
  ),
);
for (const port of process.argv.slice(2)) {
  const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
  });
  const once = () =>
    new Promise((res, rej) =>
      c.makeUnaryRequest(
        '/jina.JinaSingleDataRequestRPC/process_single_data',
        (b) => b,
        (b) => b,
        big,
        (e, r) => (e ? rej(e) : res(r)),
      ),
    );
  for (let i = 0; i < 200; i++) await once();
  const t = performance.now();
  for (let i = 0; i < 1000; i++) await once();
  console.log(port, 'us/req', (((performance.now() - t) / 1000) * 1000).toFixed(0));
  c.close();
}
