import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  AssetKeyDoc,
  BatchableMarieDoc,
  Bytes,
  Dict,
  DocList,
  Docs,
  defineDoc,
  Embedding,
  ImageUrl,
  LegacyDocument,
  type TSchema,
  Type,
  toJsonSchema,
} from '@marie/docs';
import { describe, expect, it } from 'vitest';

// An independent reader of our JSON Schemas: Python's jsonschema validates our JSON documents
// against them, and pydantic rebuilds a model from them alone (as Jina's gateway does) and
// round-trips the documents through it.
const python = spawnSync('python3', ['-c', 'import pydantic, jsonschema'], { encoding: 'utf8' });
const available = python.status === 0;
if (!available)
  console.warn(
    `pydantic peer test skipped: python3 with pydantic and jsonschema not found (${python.stderr?.trim()})`,
  );

function peer(schema: TSchema, docs: unknown[]) {
  const out = execFileSync('python3', [join(import.meta.dirname, 'pydantic_peer.py')], {
    input: JSON.stringify({ schema: toJsonSchema(schema), docs }),
    encoding: 'utf8',
  });
  return JSON.parse(out) as { valid: string[][]; docs: unknown[]; errors: (string[] | null)[] };
}

const Word = defineDoc('Word', { text: Type.String(), confidence: Type.Number({ default: 1 }) });
const Scan = defineDoc('Scan', {
  title: Type.String(),
  pages: Type.Array(Type.Integer(), { default: [] }),
  image: Type.Optional(ImageUrl()),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
  raw: Type.Optional(Bytes()),
  cover: Type.Optional(Word),
  words: Docs(Word),
  tags: Dict(),
});

describe.skipIf(!available)('a pydantic peer reads our JSON Schemas', () => {
  it('validates and round-trips documents with nested docs, lists, tensors, bytes and dicts', () => {
    const docs = new DocList(Scan, [
      {
        title: 'invoice',
        image: 's3://b/p1.png',
        embedding: [0.5, -1.25],
        raw: new Uint8Array([1, 2, 3]),
        cover: { text: 'INVOICE' },
        words: [{ text: 'total', confidence: 0.9 }, { text: '42' }],
        tags: { source: 'scan', dpi: 300 },
      },
      { title: 'empty', words: [], tags: {} },
    ]);
    const json = docs.toJSON();
    const res = peer(Scan, json);
    expect(res.valid).toEqual([[], []]);
    expect(res.errors).toEqual([null, null]);
    expect(res.docs).toEqual(json);
    // What the peer sends back reads back into the same documents.
    expect(JSON.stringify(DocList.fromJSON(Scan, res.docs as unknown[]))).toBe(
      JSON.stringify(docs),
    );
  });

  it('agrees on what is required and what is wrong', () => {
    const res = peer(Scan, [
      { words: [], tags: {} },
      { title: 3, words: [{ confidence: 1 }], tags: {} },
    ]);
    expect(res.valid[0]).toEqual(["'title' is a required property"]);
    expect(res.errors[0]).toEqual(['title']);
    expect(res.errors[1]).toEqual(['title', 'words.0.text']);
  });

  it('reads the standard Marie documents and the self-referencing LegacyDocument', () => {
    const asset = new DocList(AssetKeyDoc, [
      { asset_key: 's3://bucket/doc.pdf', pages: [1, 2] },
    ]).toJSON();
    expect(peer(AssetKeyDoc, asset).docs).toEqual(asset);
    const ocr = new DocList(BatchableMarieDoc, [
      { words: ['a'], boxes: [[0, 0, 1, 1]], text: 'a' },
    ]).toJSON();
    expect(peer(BatchableMarieDoc, ocr).docs).toEqual(ocr);
    const legacy = new DocList(LegacyDocument, [
      { text: 'root', chunks: [{ text: 'c', chunks: [{ text: 'cc' }] }] },
    ]).toJSON();
    const res = peer(LegacyDocument, legacy);
    expect(res.valid).toEqual([[]]);
    expect(res.docs).toEqual(legacy);
  });
});
