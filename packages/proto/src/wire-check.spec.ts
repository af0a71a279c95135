import { NdArray, setTensorElementLimit, tensorElementLimit } from '@marie/docs';
import { afterEach, describe, expect, it } from 'vitest';
import { readDocListBytes } from './fast-reader.js';
import { docarray, docListToProto, readableDocCount } from './index.js';

// readableDocCount lets an executor leave a request's documents serialized until its method uses
// them. Its promise: whenever it answers a count, readDocListBytes reads those bytes without an
// error. It may say -1 for bytes that read fine (the caller then simply reads them at once).

const encode = (list: docarray.DocListProto) => docarray.DocListProto.encode(list).finish();

/** A deterministic generator, so that every run checks the same bytes. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function sample(random: () => number): Uint8Array {
  const int = (n: number) => Math.floor(random() * n);
  const docs = Array.from({ length: 1 + int(4) }, (_, i) => ({
    id: `doc-${i}`,
    text: 'é'.repeat(int(3)) + 'text',
    count: int(1000), // negative int32s take 10 bytes: the walk leaves them to the ordinary read
    ratio: random(),
    flag: random() < 0.5,
    raw: Uint8Array.from({ length: int(5) }, () => int(256)),
    embedding: new NdArray(Float32Array.from({ length: int(6) }, random)),
    tags: { k: [1, 'two', { three: 3 }], nested: { deep: true } },
  }));
  return encode(docListToProto(docs));
}

describe('readableDocCount', () => {
  afterEach(() => setTensorElementLimit(Number.MAX_SAFE_INTEGER));

  it('counts the documents of lists that read cleanly, however their fields nest', () => {
    const random = rng(7);
    for (let i = 0; i < 200; i++) {
      const bytes = sample(random);
      const n = readableDocCount(bytes);
      expect(n).toBe(readDocListBytes(bytes).length);
    }
    expect(readableDocCount(new Uint8Array(0))).toBe(0);
  });

  it('answers -1 for what the ordinary read refuses: framing, tensors, int32, depth', () => {
    const tensor = (dense: docarray.DenseNdArrayProto, type = 'ndarray') =>
      encode({ docs: [{ data: { t: { ndarray: { dense }, type } } }] });
    const cases: [string, Uint8Array][] = [
      ['truncated', encode(docListToProto([{ text: 'hello' }])).subarray(0, 6)],
      ['length past the end', new Uint8Array([0x0a, 0x05, 0x0a, 0x00])],
      ['group wire type', new Uint8Array([0x0b, 0x0c])],
      ['bytes short of the shape', tensor({ buffer: new Uint8Array(8), shape: [3], dtype: '<f4' })],
      ['unknown dtype', tensor({ buffer: new Uint8Array(8), shape: [2], dtype: '<c8' })],
      ['no dtype', tensor({ buffer: new Uint8Array(0), shape: [0], dtype: '' })],
      ['not a tensor tag', tensor({ buffer: new Uint8Array(4), shape: [1], dtype: '<f4' }, 'text')],
      // int32 fields carry 2^40: the ordinary read refuses it (see codec.spec.ts)
      [
        'int32 range',
        new Uint8Array([
          0x0a, 0x0c, 0x0a, 0x0a, 0x12, 0x08, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00,
        ]),
      ],
    ];
    let deep: docarray.DocProto = { data: { leaf: { text: 'x' } } };
    for (let i = 0; i < 120; i++) deep = { data: { inner: { doc: deep } } };
    cases.push(['nested past the depth limit', encode({ docs: [deep] })]);
    for (const [what, bytes] of cases) {
      expect(readableDocCount(bytes), what).toBe(-1);
    }
    setTensorElementLimit(2);
    expect(tensorElementLimit()).toBe(2);
    expect(readableDocCount(tensor({ buffer: new Uint8Array(12), shape: [3], dtype: '<f4' }))).toBe(
      -1,
    );
  });

  it('never answers a count for bytes the ordinary read refuses (10,000 mutated lists)', () => {
    const random = rng(20261207);
    const int = (n: number) => Math.floor(random() * n);
    const tally = { counted: 0, refused: 0, readable: 0 };
    for (let i = 0; i < 10_000; i++) {
      const m = Buffer.from(sample(random));
      switch (i % 3) {
        case 0:
          for (let k = 0; k < 1 + int(4); k++) m[int(m.length)] = int(256);
          break;
        case 1:
          m[int(m.length)] = [0x0a, 0x12, 0x32, 0x10, 0x1a, 0x6a][int(6)]!;
          break;
        default:
          m.copyWithin(int(m.length), int(m.length));
      }
      const n = readableDocCount(m);
      let read: unknown[] | undefined;
      try {
        read = readDocListBytes(m);
      } catch {
        read = undefined;
      }
      if (n >= 0) {
        expect(read, `mutation ${i}`).toBeDefined();
        expect(n).toBe(read!.length);
        tally.counted++;
      } else if (read) tally.readable++;
      else tally.refused++;
    }
    // Most mutations break something, and the walk catches it; some still read.
    expect(tally.counted).toBeGreaterThan(1000);
    expect(tally.refused).toBeGreaterThan(1000);
  });
});
