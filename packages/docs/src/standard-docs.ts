import { type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { type DocOf, type DocSchema, defineDoc } from './define-doc.js';
import type { DocList } from './doc-list.js';
import {
  Bytes,
  Dict,
  Docs,
  Embedding,
  ImageBytes,
  ImageTensor,
  ImageUrl,
  Tensor,
  TextUrl,
} from './fields.js';
import type { NdArray } from './ndarray.js';

// Field names are docarray's and Marie-AI's own (`bytes_`, `asset_key`): they cross the wire.

/** docarray's `TextDoc`. */
export const TextDoc = defineDoc('TextDoc', {
  text: Type.Optional(Type.String()),
  url: Type.Optional(TextUrl()),
  embedding: Type.Optional(Embedding()),
  bytes_: Type.Optional(Bytes()),
});
export type TextDoc = DocOf<typeof TextDoc>;

/** docarray's `ImageDoc`. */
export const ImageDoc = defineDoc('ImageDoc', {
  url: Type.Optional(ImageUrl()),
  tensor: Type.Optional(ImageTensor()),
  embedding: Type.Optional(Embedding()),
  bytes_: Type.Optional(ImageBytes()),
});
export type ImageDoc = DocOf<typeof ImageDoc>;

/**
 * docarray's `AnyDoc`: any fields at all, kept as they come. What a client answers with when it
 * is not told the response's document type.
 */
export const AnyDoc = defineDoc(
  'AnyDoc',
  {},
  { additionalProperties: true },
) as unknown as DocSchema<{ id: string } & Record<string, unknown>>;
export type AnyDoc = DocOf<typeof AnyDoc>;

/** Marie's reference to a stored asset (S3 key or local path) and the pages to process. */
export const AssetKeyDoc = defineDoc('AssetKeyDoc', {
  asset_key: Type.String({ description: 'S3 key or local path of the asset' }),
  pages: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }))),
});
export type AssetKeyDoc = DocOf<typeof AssetKeyDoc>;

/** Marie's image document with tags, the unit of OCR processing. */
export const MarieDoc = defineDoc('MarieDoc', {
  ...ImageDoc.properties,
  tags: Dict(Type.Unknown(), { default: {} }),
});
export type MarieDoc = DocOf<typeof MarieDoc>;

/** Marie's OCR result: words and their bounding boxes. */
export const BatchableMarieDoc = defineDoc('BatchableMarieDoc', {
  ...MarieDoc.properties,
  words: Type.Array(Type.Unknown(), { default: [] }),
  boxes: Type.Array(Type.Unknown(), { default: [] }),
  text: Type.Optional(Type.String()),
});
export type BatchableMarieDoc = DocOf<typeof BatchableMarieDoc>;

/** Marie's document for the persistence layer. */
export const StorageDoc = defineDoc('StorageDoc', {
  content: Type.Optional(Type.Unknown()),
  blob: Type.Optional(Bytes()),
  tensor: Type.Optional(Tensor()),
  tags: Type.Optional(Dict()),
  embedding: Type.Optional(Embedding()),
});
export type StorageDoc = DocOf<typeof StorageDoc>;

/** Marie's job status answer. */
export const OutputDoc = defineDoc('OutputDoc', {
  jobid: Type.String(),
  status: Type.String(),
});
export type OutputDoc = DocOf<typeof OutputDoc>;

/**
 * docarray's `LegacyDocument`, the shape of Jina 2 documents. Endpoints that declare no document
 * type use it, so untyped executors still round-trip these fields.
 */
export interface LegacyDocument {
  id: string;
  tensor?: NdArray;
  chunks?: DocList<LegacyDocument>;
  matches?: DocList<LegacyDocument>;
  blob?: Uint8Array;
  text?: string;
  url?: string;
  embedding?: NdArray;
  tags: Record<string, unknown>;
  scores?: Record<string, unknown>;
}

const legacyFields: TProperties = {
  tensor: Type.Optional(Tensor()),
  chunks: Type.Optional(Docs<LegacyDocument>((): TSchema => LegacyDocument)),
  matches: Type.Optional(Docs<LegacyDocument>((): TSchema => LegacyDocument)),
  blob: Type.Optional(Bytes()),
  text: Type.Optional(Type.String()),
  url: Type.Optional(Type.String({ docarrayType: 'any_url' })),
  embedding: Type.Optional(Embedding()),
  tags: Dict(Type.Unknown(), { default: {} }),
  scores: Type.Optional(Dict()),
};

export const LegacyDocument = defineDoc(
  'LegacyDocument',
  legacyFields,
) as unknown as DocSchema<LegacyDocument>;
