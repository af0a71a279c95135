import { describe, expect, it } from 'vitest';
import {
  AssetKeyDoc,
  BatchableMarieDoc,
  Docs,
  defineDoc,
  Embedding,
  ImageBytes,
  ImageDoc,
  ImageUrl,
  LegacyDocument,
  MarieDoc,
  OutputDoc,
  StorageDoc,
  TextDoc,
  Type,
  toJsonSchema,
} from './index.js';

describe('toJsonSchema', () => {
  it('writes a pydantic-style model with $defs for nested documents', () => {
    const Page = defineDoc('Page', { number: Type.Integer() });
    const Scan = defineDoc('Scan', {
      title: Type.String({ description: 'Document title' }),
      lang: Type.String({ default: 'en' }),
      image: Type.Optional(ImageUrl()),
      raw: Type.Optional(ImageBytes()),
      embedding: Type.Optional(Embedding({ dtype: 'float32', shape: [768] })),
      cover: Page,
      pages: Docs(Page),
    });
    const schema = toJsonSchema(Scan);
    expect(schema).toMatchObject({
      title: 'Scan',
      type: 'object',
      required: ['title', 'cover', 'pages'],
      properties: {
        id: { type: 'string', title: 'Id' },
        title: { type: 'string', title: 'Title', description: 'Document title' },
        lang: { type: 'string', default: 'en' },
        image: {
          anyOf: [{ type: 'string', 'x-docarray-type': 'image_url' }, { type: 'null' }],
          default: null,
        },
        raw: {
          anyOf: [
            { type: 'string', format: 'binary', 'x-docarray-type': 'image_bytes' },
            { type: 'null' },
          ],
        },
        embedding: {
          anyOf: [
            {
              type: 'array',
              items: { type: 'number' },
              'x-docarray-type': 'ndarray_embedding',
              'x-dtype': 'float32',
              'x-shape': [768],
            },
            { type: 'null' },
          ],
        },
        cover: { $ref: '#/$defs/Page' },
        pages: { type: 'array', items: { $ref: '#/$defs/Page' } },
      },
      $defs: {
        Page: {
          title: 'Page',
          type: 'object',
          required: ['number'],
          properties: { number: { type: 'integer' } },
        },
      },
    });
    // Only JSON: no functions, no symbols, no TypeBox internals.
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
    expect(JSON.stringify(schema)).not.toMatch(/Kind|docType|patternProperties|\$id/);
  });

  it('handles a document type that lists itself', () => {
    const schema = toJsonSchema(LegacyDocument);
    expect(schema.properties).toMatchObject({
      chunks: {
        anyOf: [{ type: 'array', items: { $ref: '#/$defs/LegacyDocument' } }, { type: 'null' }],
      },
      tags: { type: 'object', additionalProperties: true, default: {} },
    });
    expect(schema.$defs).toHaveProperty('LegacyDocument');
    // An open tensor field documents both JSON forms: lists, or {dtype, shape, data}.
    const tensor = (schema.properties as any).tensor.anyOf[0];
    expect(tensor.anyOf[0]).toEqual({ type: 'array', items: {} });
    expect(tensor.anyOf[1]).toMatchObject({ type: 'object', required: ['dtype', 'shape', 'data'] });
  });

  it('keeps Marie field names exactly', () => {
    const fields = (t: Parameters<typeof toJsonSchema>[0]) =>
      Object.keys(toJsonSchema(t).properties as object);
    expect(fields(TextDoc)).toEqual(['id', 'text', 'url', 'embedding', 'bytes_']);
    expect(fields(ImageDoc)).toEqual(['id', 'url', 'tensor', 'embedding', 'bytes_']);
    expect(fields(AssetKeyDoc)).toEqual(['id', 'asset_key', 'pages']);
    expect(fields(MarieDoc)).toEqual(['id', 'url', 'tensor', 'embedding', 'bytes_', 'tags']);
    expect(fields(BatchableMarieDoc)).toEqual([
      'id',
      'url',
      'tensor',
      'embedding',
      'bytes_',
      'tags',
      'words',
      'boxes',
      'text',
    ]);
    expect(fields(StorageDoc)).toEqual(['id', 'content', 'blob', 'tensor', 'tags', 'embedding']);
    expect(fields(OutputDoc)).toEqual(['id', 'jobid', 'status']);
    expect(toJsonSchema(AssetKeyDoc).required).toEqual(['asset_key']);
    expect(toJsonSchema(OutputDoc).required).toEqual(['jobid', 'status']);
  });
});
