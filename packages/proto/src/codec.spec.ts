import { createDataRequest, StatusCode } from '@marie/core';
import {
  Bytes,
  Dict,
  DocList,
  Docs,
  DocValidationError,
  defineDoc,
  Embedding,
  ImageBytes,
  ImageUrl,
  LegacyDocument,
  NdArray,
  Tensor,
  Type,
} from '@marie/docs';
import { describe, expect, it } from 'vitest';
import { readDataRequest } from './fast-reader.js';
import { writeDataRequest } from './fast-writer.js';
import {
  dataRequestFromProto,
  dataRequestToProto,
  decodeDataRequest,
  docarray,
  docListToProto,
  docsFromProto,
  encodeDataRequest,
  jina,
  withDocsRead,
} from './index.js';

const Word = defineDoc('Word', { text: Type.String(), score: Type.Number({ default: 0 }) });
const Page = defineDoc('Page', {
  title: Type.String({ default: '' }),
  count: Type.Integer({ default: 0 }),
  big: Type.Optional(Type.Integer()),
  ratio: Type.Number({ default: 1 }),
  flag: Type.Boolean({ default: false }),
  image: Type.Optional(ImageUrl()),
  raw: Type.Optional(Bytes()),
  png: Type.Optional(ImageBytes()),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
  cover: Type.Optional(Word),
  words: Docs(Word, { default: [] }),
  labels: Type.Array(Type.String(), { default: [] }),
  tags: Dict(Type.Unknown(), { default: {} }),
});

const sample = () =>
  new DocList(Page, [
    {
      id: 'a'.repeat(32),
      title: 'invoice',
      count: 3,
      big: 2 ** 40,
      ratio: 2,
      flag: true,
      image: 's3://bucket/page.png',
      raw: new Uint8Array([1, 2, 3]),
      png: new Uint8Array([137, 80]),
      embedding: new Float32Array([0.5, -1, 3.25]),
      cover: { text: 'INVOICE', score: 0.9 },
      words: [{ text: 'total' }, { text: '42', score: 1 }],
      labels: ['x', 'y'],
      tags: { dpi: 300, nested: { ok: true, list: [1, 'two'] }, half: 0.5 },
    },
    {},
  ]);

describe('document codec', () => {
  it('writes every field with the wire types and docarray tags of spec/wire.md', () => {
    const proto = docListToProto(sample());
    const d = proto.docs[0]!.data;
    expect(d.id).toEqual({ text: 'a'.repeat(32), type: 'id' });
    expect(d.title).toEqual({ text: 'invoice' });
    expect(d.count).toEqual({ integer: 3 });
    expect(d.big).toEqual({ float: 2 ** 40 });
    expect(d.ratio).toEqual({ float: 2 });
    expect(d.flag).toEqual({ boolean: true });
    expect(d.image).toEqual({ text: 's3://bucket/page.png', type: 'image_url' });
    expect(d.raw).toEqual({ blob: new Uint8Array([1, 2, 3]) });
    expect(d.png).toEqual({ blob: new Uint8Array([137, 80]), type: 'image_bytes' });
    expect(d.embedding!.type).toBe('ndarray_embedding');
    expect(d.embedding!.ndarray!.dense).toEqual({
      buffer: new Uint8Array(new Float32Array([0.5, -1, 3.25]).buffer),
      shape: [3],
      dtype: '<f4',
    });
    expect(d.cover!.doc!.data.text).toEqual({ text: 'INVOICE' });
    expect(d.words!.docArray!.docs).toHaveLength(2);
    expect(d.labels).toEqual({ list: { data: [{ text: 'x' }, { text: 'y' }] } });
    expect(d.tags!.dict!.data.nested!.dict!.data.list).toEqual({
      list: { data: [{ integer: 1 }, { text: 'two' }] },
    });
    // A missing optional field is an empty NodeProto, as docarray writes None.
    expect(proto.docs[1]!.data.embedding).toEqual({});
    expect(Object.keys(proto.docs[1]!.data)).toEqual(Object.keys(Page.properties));
  });

  it('round-trips a DataRequest through bytes exactly', () => {
    const docs = sample();
    const req = createDataRequest({
      endpoint: '/extract',
      docs,
      parameters: { job_id: 'j', n: 2, nested: { a: [1, null] } },
    });
    req.header.targetExecutor = 'ocr.*';
    req.header.timeout = 5000;
    req.header.status = {
      code: StatusCode.ERROR,
      description: 'ValueError: x',
      exception: { name: 'ValueError', args: ['x'], stacks: ['at y'], executor: 'E' },
    };
    req.routes.push({ executor: 'gateway', startTime: new Date(1000), endTime: new Date(2500) });
    const back = decodeDataRequest(encodeDataRequest(req));
    expect(back.header).toEqual(req.header);
    expect(back.parameters).toEqual(req.parameters);
    expect(back.routes).toEqual(req.routes);
    const again = new DocList(Page, back.docs as object[]);
    expect(JSON.stringify(again)).toBe(JSON.stringify(docs));
    expect(again[0]!.embedding!.equals(docs[0]!.embedding!)).toBe(true);
  });

  it('writes exactly the bytes of the generated encoder, in one allocation', () => {
    const req = createDataRequest({
      endpoint: '/e',
      docs: sample(),
      parameters: { a: [1, 'x', null, { b: true }], n: -2.5, e: {} },
    });
    req.header.status = {
      code: StatusCode.ERROR,
      description: 'd',
      exception: { name: 'N', args: ['a', ''], stacks: ['s'], executor: 'E' },
    };
    req.header.timeout = 300;
    req.routes.push(
      { executor: 'x', startTime: new Date(-1500), endTime: new Date(1_800_000_000_123) },
      { executor: '' },
    );
    const proto = dataRequestToProto(req);
    proto.data!.docs!.docs[0]!.data.neg = { integer: -7 };
    proto.data!.docs!.docs[0]!.data.set = { set: { data: [{ text: 's' }] }, type: 'x' };
    proto.data!.docs!.docs[0]!.data.tuple = { tuple: { data: [{ float: 0.1 }] } };
    proto.data!.docs!.docs[0]!.data.params = {
      ndarray: {
        dense: { buffer: new Uint8Array(0), shape: [], dtype: '' },
        parameters: { k: 'v' },
      },
    };
    proto.data!.docs!.docs[0]!.data['ünïcode ✓'] = { text: 'ßü🙂' };
    expect(Buffer.from(writeDataRequest(proto))).toEqual(
      Buffer.from(jina.DataRequestProto.encode(proto).finish()),
    );
    const bytesOnly: jina.DataRequestProto = {
      header: { requestId: '' },
      routes: [],
      data: { docsBytes: new Uint8Array([1, 2]) },
    };
    expect(Buffer.from(writeDataRequest(bytesOnly))).toEqual(
      Buffer.from(jina.DataRequestProto.encode(bytesOnly).finish()),
    );
  });

  it('reads bytes straight into documents exactly as the generated decoder + conversion does', () => {
    const req = createDataRequest({
      endpoint: '/e',
      docs: sample(),
      parameters: { p: [1, { q: null }] },
    });
    req.routes.push({ executor: 'a', startTime: new Date(5000) });
    const proto = dataRequestToProto(req);
    proto.data!.docs!.docs[0]!.data.dict = { dict: { data: { empty: {}, n: { integer: -3 } } } };
    proto.data!.docs!.docs[0]!.data.tuple = { tuple: { data: [{ text: 't' }, {}] } };
    const bytes = writeDataRequest(proto);
    expect(readDataRequest(bytes)).toEqual(
      dataRequestFromProto(jina.DataRequestProto.decode(bytes)),
    );
  });

  it('leaves documents serialized for a gateway and writes them back byte for byte', () => {
    const req = createDataRequest({ endpoint: '/extract', docs: sample(), parameters: { n: 1 } });
    const bytes = encodeDataRequest(req);
    const raw = decodeDataRequest(bytes, { docsBytes: true });
    expect(raw.docs).toEqual([]);
    expect(raw.docsBytes).toBeInstanceOf(Uint8Array);
    expect(raw.header).toEqual(req.header);
    expect(raw.parameters).toEqual({ n: 1 });
    // Forwarded unread and unchanged: the very bytes received go out, not a copy.
    expect(encodeDataRequest(raw)).toBe(bytes);
    expect(Buffer.from(encodeDataRequest({ ...raw })).equals(Buffer.from(bytes))).toBe(true);
    const routed = decodeDataRequest(
      encodeDataRequest({ ...raw, routes: [{ executor: 'gateway' }] }),
    );
    expect(routed.routes).toEqual([{ executor: 'gateway' }]);
    expect(JSON.stringify(new DocList(Page, routed.docs as object[]))).toBe(
      JSON.stringify(req.docs),
    );
    // Read when needed: the same documents as a full decode.
    const read = withDocsRead(raw);
    expect(read.docsBytes).toBeUndefined();
    expect(read.docs).toEqual(decodeDataRequest(bytes).docs);
    // docs_bytes from a Python peer pass through the same way.
    const peer = jina.DataRequestProto.encode({
      header: { requestId: 'r' },
      routes: [],
      data: { docsBytes: docarray.DocListProto.encode(docListToProto(sample())).finish() },
    }).finish();
    const fromPeer = decodeDataRequest(peer, { docsBytes: true });
    expect(withDocsRead(fromPeer).docs).toEqual(decodeDataRequest(peer).docs);
    expect(() => withDocsRead({ ...raw, docsBytes: new Uint8Array([0xff, 0xff]) })).toThrow(
      DocValidationError,
    );
  });

  it('reads docs_bytes as a serialized DocListProto', () => {
    const list = docListToProto(sample());
    const bytes = docarray.DocListProto.encode(list).finish();
    const proto: jina.DataRequestProto = {
      header: { requestId: 'r' },
      routes: [],
      data: { docsBytes: bytes },
    };
    const req = dataRequestFromProto(
      jina.DataRequestProto.decode(jina.DataRequestProto.encode(proto).finish()),
    );
    expect(new DocList(Page, req.docs as object[])[0]!.title).toBe('invoice');
  });

  it('ignores map keys the schema does not have', () => {
    const proto = docListToProto(sample());
    proto.docs[0]!.data.unknown_field = { text: 'from a newer peer' };
    const docs = new DocList(Page, docsFromProto(proto));
    expect(docs[0]).not.toHaveProperty('unknown_field');
  });

  it('encodes every dtype little-endian and reads foreign tensor tags as ndarray', () => {
    const T = defineDoc('T', { t: Type.Optional(LegacyDocument.properties.tensor as never) });
    for (const data of [
      new Float64Array([1.5, -2]),
      new Int8Array([-1, 5]),
      new BigInt64Array([-(2n ** 62n)]),
      new Uint16Array([1, 65535]),
    ]) {
      const tensor = new NdArray(data);
      const proto = docListToProto(new DocList(T, [{ t: tensor }]));
      proto.docs[0]!.data.t!.type = 'torch_tensor';
      const back = new DocList(T, docsFromProto(proto));
      expect((back[0]!.t as NdArray).equals(tensor)).toBe(true);
    }
  });

  it('names the field of a tensor whose dtype or shape does not fit its bytes', () => {
    const bad = (dense: docarray.DenseNdArrayProto) => () =>
      docsFromProto({ docs: [{ data: { embedding: { ndarray: { dense }, type: 'ndarray' } } }] });
    expect(bad({ buffer: new Uint8Array(8), shape: [3], dtype: '<f4' })).toThrow(
      new DocValidationError(
        'docs[0].embedding',
        'tensor of shape [3] and dtype float32 needs 12 bytes, got 8',
      ),
    );
    expect(bad({ buffer: new Uint8Array(8), shape: [2], dtype: '<c8' })).toThrow(
      'docs[0].embedding: unsupported dtype "<c8"',
    );
    expect(() => decodeDataRequest(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))).toThrow(
      /^request: not a DataRequestProto/,
    );
  });

  it('refuses an integer above int32 instead of keeping its low bits', () => {
    const doc = docarray.DocListProto.encode({
      docs: [{ data: { count: { integer: 7 } } }],
    }).finish();
    const bytes = Buffer.from(doc);
    // Rewrite the varint 7 (0x10 0x07) as 2^40 (10 bytes on the wire for int32 fields: sign-extended).
    const at = bytes.indexOf(Buffer.from([0x10, 0x07]));
    const big = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    const patched = Buffer.concat([bytes.subarray(0, at), big, bytes.subarray(at + 2)]);
    // Fix the two enclosing length prefixes (DocProto entry and map value) grown by 5 bytes.
    const proto: jina.DataRequestProto = {
      header: { requestId: 'r' },
      routes: [],
      data: { docsBytes: fixLengths(patched, 5) },
    };
    expect(() => dataRequestFromProto(proto)).toThrow(
      'NodeProto.integer: 1099511627776 is outside the int32 range',
    );
  });

  it('validation of decoded documents names the field that does not match', () => {
    const proto = docListToProto(sample());
    proto.docs[0]!.data.count = { text: 'three' };
    expect(() => new DocList(Page, docsFromProto(proto))).toThrow(
      'docs[0].count: expected integer, got string "three"',
    );
  });
});

/** Adds `grow` to every length prefix on the path to the patched varint (DocListProto nesting). */
function fixLengths(bytes: Buffer, grow: number): Uint8Array {
  // DocListProto{ docs: [DocProto{ data: {count: NodeProto{integer}} }] }: three nested lengths.
  const out = Buffer.from(bytes);
  let pos = 0;
  for (let depth = 0; depth < 3; depth++) {
    pos += 1; // tag
    out[pos] = out[pos]! + grow; // single-byte lengths in this small message
    pos += 1;
    if (depth === 1) pos += 7; // skip map key "count" (tag, len, 5 bytes)
  }
  return out;
}

describe('tensors on the wire', () => {
  const T = defineDoc('TensorDoc', {
    note: Type.String({ default: '' }),
    t: Type.Optional(Tensor()),
  });
  const send = (docs: object[]) =>
    encodeDataRequest(createDataRequest({ endpoint: '/t', docs: new DocList(T, docs) }));
  const receive = (bytes: Uint8Array) => new DocList(T, decodeDataRequest(bytes).docs as object[]);
  const tensorOf = (bytes: Uint8Array) => receive(bytes)[0]!.t as NdArray;

  it('reads big-endian dtypes (numpy ">f4") with their values, and writes them back little-endian', () => {
    const cases: [string, ArrayLike<number | bigint>, (b: Buffer) => Buffer, string][] = [
      ['>f4', new Float32Array([1.5, -2, 3.25]), (b) => b.swap32(), '<f4'],
      ['>f8', new Float64Array([1e300, -0.5]), (b) => b.swap64(), '<f8'],
      ['>i2', new Int16Array([-300, 7]), (b) => b.swap16(), '<i2'],
      ['>i8', new BigInt64Array([-(2n ** 62n), 5n]), (b) => b.swap64(), '<i8'],
      ['>u1', new Uint8Array([1, 255]), (b) => b, '|u1'],
    ];
    for (const [dtype, values, swap, little] of cases) {
      const le = values as unknown as ArrayBufferView;
      const be = swap(Buffer.from(new Uint8Array(le.buffer, le.byteOffset, le.byteLength)));
      const [doc] = docsFromProto({
        docs: [
          {
            data: {
              t: {
                ndarray: { dense: { buffer: be, shape: [values.length], dtype } },
                type: 'ndarray',
              },
            },
          },
        ],
      });
      const t = doc!.t as NdArray;
      expect([dtype, Array.from(t.data as ArrayLike<number>)]).toEqual([
        dtype,
        Array.from(values as ArrayLike<number>),
      ]);
      // Out as this host writes every tensor: little-endian, said so in the dtype.
      const out = jina.DataRequestProto.decode(send([{ t }]));
      const dense = out.data!.docs!.docs[0]!.data.t!.ndarray!.dense!;
      expect(dense.dtype).toBe(little);
      expect(
        Buffer.from(dense.buffer).equals(Buffer.from(le.buffer, le.byteOffset, le.byteLength)),
      ).toBe(true);
    }
  });

  it('a tensor read as a view of the message: changed, it goes back changed; untouched, byte for byte', () => {
    // The note's length moves the tensor's bytes: at some lengths they sit at an offset a
    // Float32Array can view (a view), at others not (copied when first read).
    const seen = new Set<string>();
    for (let pad = 0; pad < 4; pad++) {
      const data = new Float32Array([1, 2, 3, 4]);
      const bytes = send([{ note: 'x'.repeat(pad), t: new NdArray(data, [2, 2]) }]);
      const raw = Buffer.from(data.buffer);
      // Untouched: the answer carries the same bytes for it.
      expect(
        Buffer.from(
          encodeDataRequest({ ...decodeDataRequest(bytes), docs: receive(bytes) }),
        ).includes(raw),
      ).toBe(true);
      const t = tensorOf(bytes);
      const view = t.data.buffer === (bytes as Uint8Array).buffer;
      seen.add(view ? 'view' : 'copy');
      (t.data as Float32Array)[3] = 42;
      const back = tensorOf(send([{ t }]));
      expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3, 42]);
      expect(back.shape).toEqual([2, 2]);
    }
    expect([...seen].sort()).toEqual(['copy', 'view']);
  });

  it('0-element tensors and a 64 Mi-element tensor (read as a view, nothing copied)', () => {
    for (const shape of [[0], [3, 0], [0, 5, 2]]) {
      const t = tensorOf(send([{ t: new NdArray(new Float32Array(0), shape) }]));
      expect([t.shape, t.size]).toEqual([shape, 0]);
    }
    const n = 64 * 1024 * 1024;
    const data = new Uint8Array(n);
    data[0] = 1;
    data[n - 1] = 7;
    const bytes = send([{ t: new NdArray(data, [8192, 8192]) }]);
    expect(bytes.byteLength).toBeGreaterThan(n);
    const t = tensorOf(bytes);
    expect([t.shape, t.size, t.data[0], t.data[n - 1]]).toEqual([[8192, 8192], n, 1, 7]);
    expect(t.data.buffer).toBe((bytes as Uint8Array).buffer);
    expect(send([{ t }]).byteLength).toBe(bytes.byteLength);
  });
});
