import { describe, expect, it } from 'vitest';
import {
  AssetKeyDoc,
  Dict,
  DocList,
  type DocOf,
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
} from './index.js';

const InputDoc = defineDoc('InputDoc', { text: Type.String({ default: '' }) });
type InputDoc = DocOf<typeof InputDoc>;

const Page = defineDoc('Page', {
  number: Type.Integer({ minimum: 1 }),
  image: Type.Optional(ImageUrl()),
});
const Scan = defineDoc('Scan', {
  title: Type.String(),
  embedding: Type.Optional(Embedding({ dtype: 'float32', shape: [4] })),
  raw: Type.Optional(ImageBytes()),
  cover: Type.Optional(Page),
  pages: Docs(Page),
  meta: Dict(Type.Unknown(), { default: {} }),
  scores: Type.Array(Type.Number(), { default: [] }),
});

function errorOf(fn: () => unknown): DocValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DocValidationError);
    return err as DocValidationError;
  }
  throw new Error('expected a DocValidationError');
}

describe('DocList', () => {
  it('applies defaults and gives each document a random 32-hex id unless one is given', () => {
    const docs = new DocList(InputDoc, [{}, { text: 'hello', id: 'mine' }]);
    expect(docs).toHaveLength(2);
    expect(docs[0]!.text).toBe('');
    expect(docs[0]!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(docs[1]).toEqual({ id: 'mine', text: 'hello' });
    const again = new DocList(InputDoc, [{}]);
    expect(again[0]!.id).not.toBe(docs[0]!.id);
    const typed: InputDoc = docs[1]!;
    expect(typed.text).toBe('hello');
  });

  it('is an array: iterate, index, map, length; push validates', () => {
    const docs = new DocList(InputDoc, [{ text: 'a' }]);
    docs.push({ text: 'b' }, { text: 'c' });
    expect([...docs].map((d) => d.text)).toEqual(['a', 'b', 'c']);
    expect(docs.map((d) => d.text.toUpperCase())).toEqual(['A', 'B', 'C']);
    expect(Array.isArray(docs.map((d) => d))).toBe(true);
    expect(docs.get('text')).toEqual(['a', 'b', 'c']);
    const err = errorOf(() => docs.push({ text: 5 as unknown as string }));
    expect(err.message).toBe('docs[3].text: expected string, got number');
    expect(docs).toHaveLength(3);
  });

  it('sets a column, validating every value', () => {
    const docs = new DocList(InputDoc, [{ text: 'a' }, { text: 'b' }]);
    docs.set('text', ['x', 'y']);
    expect(docs.get('text')).toEqual(['x', 'y']);
    expect(errorOf(() => docs.set('text', ['x'])).message).toBe(
      'docs.text: expected 2 values, got 1',
    );
    expect(errorOf(() => docs.set('text', ['x', 1])).message).toBe(
      'docs[1].text: expected string, got number',
    );
  });

  it('names the document index and field path of what is wrong', () => {
    const ok = { title: 't', pages: [] };
    const cases: [unknown[], string][] = [
      [
        [ok, ok, ok, { ...ok, embedding: 'nope' }],
        'docs[3].embedding: expected Float32Array (float32)',
      ],
      [
        [{ ...ok, embedding: new Float64Array(4) }],
        'docs[0].embedding: expected Float32Array (float32), got Float64Array',
      ],
      [[{ ...ok, embedding: [1, 2, 3] }], 'docs[0].embedding: expected shape [4], got [3]'],
      [
        [{ ...ok, embedding: [1, 2, 'x', 4] }],
        'docs[0].embedding[2]: expected a number, got string "x"',
      ],
      [[{ pages: [] }], 'docs[0].title: required field is missing'],
      [
        [{ ...ok, pages: [{ number: 0 }] }],
        'docs[0].pages[0].number: expected integer to be greater or equal to 1',
      ],
      [[{ ...ok, pages: [{ number: 1.5 }] }], 'docs[0].pages[0].number: expected integer'],
      [[{ ...ok, cover: { number: 'x' } }], 'docs[0].cover.number: expected integer'],
      [[{ ...ok, raw: 'not base64!' }], 'docs[0].raw: expected base64 bytes'],
      [[{ ...ok, pages: 'x' }], 'docs[0].pages: expected a list of documents, got string'],
      [[ok, 42], 'docs[1]: expected a document object, got number'],
      [[{ ...ok, meta: [] }], 'docs[0].meta: expected object'],
    ];
    for (const [items, message] of cases) {
      expect(errorOf(() => new DocList(Scan, items as never)).message).toContain(message);
    }
  });

  it('holds tensors, bytes, nested documents, lists of documents and dicts', () => {
    const [doc] = new DocList(Scan, [
      {
        title: 'invoice',
        embedding: new Float32Array([1, 2, 3, 4]),
        raw: new Uint8Array([0, 255, 7]),
        cover: { number: 1, image: 's3://bucket/cover.png' },
        pages: [{ number: 1 }, { number: 2 }],
        meta: { source: 'scanner', dpi: 300 },
      },
    ]);
    expect(doc!.embedding).toBeInstanceOf(NdArray);
    expect(doc!.embedding!.dtype).toBe('float32');
    expect(doc!.cover!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(doc!.pages).toBeInstanceOf(DocList);
    expect(doc!.pages.docType).toBe(Page);
    expect(doc!.pages.get('number')).toEqual([1, 2]);
    expect(doc!.scores).toEqual([]);
    expect(doc!.meta).toEqual({ source: 'scanner', dpi: 300 });
  });

  it('round-trips through JSON exactly, tensors as lists or base64', () => {
    const docs = new DocList(Scan, [
      {
        title: 'a',
        embedding: [0.1, -2.5, 1e-8, 3.4e38],
        raw: new Uint8Array([1, 2, 3]),
        cover: { number: 3 },
        pages: [{ number: 1, image: 'p1.png' }],
        meta: { nested: { x: [1, 2] } },
      },
      { title: 'b', pages: [] },
    ]);
    for (const tensors of ['list', 'base64'] as const) {
      const text = JSON.stringify(docs.toJSON({ tensors }));
      const back = DocList.fromJSON(Scan, text);
      expect(back).toHaveLength(2);
      expect(back[0]!.embedding!.equals(docs[0]!.embedding!)).toBe(true);
      expect(back[0]!.raw).toEqual(docs[0]!.raw);
      expect(back[0]!.id).toBe(docs[0]!.id);
      expect(back[0]!.cover).toEqual(docs[0]!.cover);
      expect(back[0]!.pages[0]).toEqual(docs[0]!.pages[0]);
      expect(back[0]!.meta).toEqual(docs[0]!.meta);
      expect(back[1]!.embedding).toBeUndefined();
      expect(JSON.stringify(back)).toBe(JSON.stringify(docs));
    }
    expect(JSON.parse(JSON.stringify(docs))[0].raw).toBe('AQID');
  });

  it('takes null for optional fields, as Python peers send it', () => {
    const [doc] = new DocList(Scan, [{ title: 'x', pages: [], embedding: null, cover: null }]);
    expect(doc).not.toHaveProperty('embedding');
    expect(doc).not.toHaveProperty('cover');
  });

  it('ignores keys its schema does not have', () => {
    const [doc] = new DocList(InputDoc, [{ text: 'a', extra: 1 } as never]);
    expect(doc).toEqual({ id: doc!.id, text: 'a' });
  });

  it('gives a clear error for JSON that is not a list', () => {
    expect(errorOf(() => DocList.fromJSON(InputDoc, '{"text":1}')).message).toBe(
      'docs: expected a JSON array of documents, got object',
    );
  });

  it('reads AssetKeyDoc and LegacyDocument (self-referencing chunks)', () => {
    expect(errorOf(() => new DocList(AssetKeyDoc, [{ pages: [1] }])).message).toBe(
      'docs[0].asset_key: required field is missing',
    );
    const docs = new DocList(LegacyDocument, [
      { text: 'root', chunks: [{ text: 'c1', chunks: [{ text: 'c1.1' }] }], tensor: [[1, 2]] },
    ]);
    const root = docs[0]!;
    expect(root.tags).toEqual({});
    expect(root.chunks!.docType).toBe(LegacyDocument);
    expect(root.chunks![0]!.chunks![0]!.text).toBe('c1.1');
    expect(root.tensor!.shape).toEqual([1, 2]);
    const back = DocList.fromJSON(LegacyDocument, JSON.stringify(docs));
    expect(back[0]!.chunks![0]!.chunks![0]!.id).toBe(root.chunks![0]!.chunks![0]!.id);
  });

  it('checks tensor fields with a dtype given as NdArray', () => {
    const T = defineDoc('T', { t: Tensor({ dtype: 'int32' }) });
    const good = new NdArray(new Int32Array([1, 2]));
    expect(new DocList(T, [{ t: good }])[0]!.t).toBe(good);
    expect(errorOf(() => new DocList(T, [{ t: new NdArray(new Int8Array([1])) }])).message).toBe(
      'docs[0].t: expected dtype int32, got int8',
    );
    expect(errorOf(() => new DocList(T, [{ t: [1, 2 ** 40] }])).message).toBe(
      'docs[0].t[1]: expected an integer in int32 range, got number',
    );
  });

  it('names the choices of a field that is one of several constants', () => {
    const Boxed = defineDoc('Boxed', {
      format: Type.Union([Type.Literal('xywh'), Type.Literal('xyxy')]),
    });
    expect(errorOf(() => new DocList(Boxed, [{ format: 'polygon' }] as never)).message).toBe(
      'docs[0].format: expected one of "xywh", "xyxy", got string "polygon"',
    );
  });
});

describe('DocList.lazy', () => {
  const source = new Uint8Array([1, 2, 3]);
  const counted = (items: unknown[]) => {
    const reads = { n: 0 };
    const list = DocList.lazy(
      InputDoc,
      () => {
        reads.n++;
        return items;
      },
      { source },
    );
    return { list, reads };
  };

  it('reads nothing while only its type is asked, awaited or checked', async () => {
    const { list, reads } = counted([{ text: 'a' }]);
    expect(list instanceof DocList).toBe(true);
    expect(Array.isArray(list)).toBe(true);
    expect(list.docType).toBe(InputDoc);
    expect(await Promise.resolve(list)).toBe(list); // awaiting looks for `then`
    expect(Object.prototype.toString.call(list)).toBe('[object Array]');
    expect(reads.n).toBe(0);
    expect(DocList.unreadSource(list)).toBe(source);
  });

  it('reads and validates once, at the first use, and is then an ordinary DocList', () => {
    const { list, reads } = counted([{ text: 'a' }, {}]);
    expect(list.length).toBe(2);
    expect(reads.n).toBe(1);
    expect(DocList.unreadSource(list)).toBeUndefined();
    expect(list[1]!.text).toBe(''); // defaults applied
    expect(list[0]!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(list.map((d) => d.text)).toEqual(['a', '']);
    list.push({ text: 'c' });
    expect([...list].map((d) => d.text)).toEqual(['a', '', 'c']);
    expect(() => list.push({ text: 3 } as never)).toThrow('docs[3].text');
    expect(JSON.parse(JSON.stringify(list)).map((d: InputDoc) => d.text)).toEqual(['a', '', 'c']);
    expect(reads.n).toBe(1);
  });

  it('tells its length without reading when it is given a count', () => {
    const reads = { n: 0 };
    const list = DocList.lazy(
      InputDoc,
      () => {
        reads.n++;
        return [{ text: 'a' }, { text: 'b' }];
      },
      { source, count: () => 2 },
    );
    expect(list.length).toBe(2);
    expect(reads.n).toBe(0);
    expect(DocList.unreadSource(list)).toBe(source);
    expect(list.map((d) => d.text)).toEqual(['a', 'b']);
    expect(reads.n).toBe(1);
  });

  it('counts any use as reading: an index, iteration, keys, a write', () => {
    for (const use of [
      (l: DocList<InputDoc>) => l[0],
      (l: DocList<InputDoc>) => [...l],
      (l: DocList<InputDoc>) => Object.keys(l),
      (l: DocList<InputDoc>) => 0 in l,
      (l: DocList<InputDoc>) => {
        l[0] = { id: 'x', text: 'y' };
      },
    ]) {
      const { list, reads } = counted([{ text: 'a' }]);
      use(list);
      expect(reads.n).toBe(1);
      expect(DocList.unreadSource(list)).toBeUndefined();
    }
  });

  it('throws what is wrong with its documents at the first use, and at every use after it', () => {
    const { list, reads } = counted([{ text: 'a' }, { text: 7 }]);
    expect(errorOf(() => list.length).message).toBe('docs[1].text: expected string, got number');
    expect(errorOf(() => list[0]).message).toBe('docs[1].text: expected string, got number');
    expect(reads.n).toBe(1);
    const broken = DocList.lazy(
      InputDoc,
      () => {
        throw new DocValidationError('docs', 'not a serialized DocListProto');
      },
      { source },
    );
    expect(errorOf(() => [...broken]).message).toBe('docs: not a serialized DocListProto');
  });
});
