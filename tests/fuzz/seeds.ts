// The valid DataRequestProto messages the fuzz tests mutate: a typed request with parameters, a
// tensor, and a LegacyDocument with chunks and an embedding to an endpoint nobody binds.
import { createDataRequest } from '@marie/core';
import { DocList, LegacyDocument, NdArray } from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';
import { TensorDoc, TextIn } from '../conformance/reference-executor.js';

export const PROTO_SEEDS: readonly Uint8Array[] = [
  encodeDataRequest(
    createDataRequest({
      endpoint: '/upper',
      docs: new DocList(TextIn, [{ text: 'hello' }, { text: 'world', tags: { a: 1 } }]),
      parameters: { x: [1, 'y'] },
    }),
  ),
  encodeDataRequest(
    createDataRequest({
      endpoint: '/tensor',
      docs: new DocList(TensorDoc, [
        { tensor: new NdArray(new Float32Array([1, 2, 3, 4]), [2, 2]) },
      ]),
    }),
  ),
  encodeDataRequest(
    createDataRequest({
      endpoint: '/nowhere',
      parameters: { a: [1, 'x'] },
      docs: new DocList(LegacyDocument, [
        { text: 't', chunks: [{ text: 'c' }], embedding: [1, 2] },
      ]),
    }),
  ),
];
