import {
  Kind,
  type SchemaOptions,
  type TRecord,
  type TSchema,
  type TString,
  type TUint8Array,
  type TUnknown,
  type TUnsafe,
  Type,
  TypeRegistry,
} from '@sinclair/typebox';
import type { DocList } from './doc-list.js';
import { type DType, NdArray } from './ndarray.js';

/** TypeBox kind of tensor fields. */
export const TENSOR_KIND = 'MarieNdArray';
/** TypeBox kind of list-of-documents fields. */
export const DOC_LIST_KIND = 'MarieDocList';
/** Marks a TypeBox object schema made by `defineDoc`. Survives the spreads TypeBox does. */
export const DOC_MARKER: unique symbol = Symbol.for('marie.doc');

/**
 * The docarray type tag of a field (spec/wire.md, NodeProto.type): how a tensor, URL or bytes
 * field is named on the wire so a Python peer rebuilds the same pydantic type.
 */
export type TensorTag =
  | 'ndarray'
  | 'ndarray_embedding'
  | 'image_ndarray'
  | 'audio_ndarray'
  | 'video_ndarray';
export type UrlTag =
  | 'any_url'
  | 'image_url'
  | 'audio_url'
  | 'video_url'
  | 'text_url'
  | 'mesh_url'
  | 'point_cloud_url'
  | 'url3d';
export type BytesTag = 'bytes' | 'image_bytes' | 'audio_bytes' | 'video_bytes';

export interface TensorOptions extends SchemaOptions {
  /** Element type every value must have. Any dtype is accepted when left out. */
  dtype?: DType;
  /** Expected shape; `null` marks a free axis (`[null, 768]`). */
  shape?: readonly (number | null)[];
}

export interface TTensor extends TUnsafe<NdArray> {
  [Kind]: typeof TENSOR_KIND;
  docarrayType: TensorTag;
  dtype?: DType;
  shape?: readonly (number | null)[];
}

export interface TDocList<D = unknown> extends TUnsafe<DocList<D & object>> {
  [Kind]: typeof DOC_LIST_KIND;
  /** The item document type, behind a thunk so that a document can list itself (chunks). */
  docType: () => TSchema;
}

export function shapeMatches(
  want: readonly (number | null)[] | undefined,
  got: readonly number[],
): boolean {
  if (want === undefined) return true;
  if (want.length !== got.length) return false;
  return want.every((d, i) => d === null || d === got[i]);
}

TypeRegistry.Set<TTensor>(
  TENSOR_KIND,
  (schema, value) =>
    value instanceof NdArray &&
    (schema.dtype === undefined || value.dtype === schema.dtype) &&
    shapeMatches(schema.shape, value.shape),
);

function tensor(tag: TensorTag) {
  return (options: TensorOptions = {}): TTensor =>
    Type.Unsafe<NdArray>({ ...options, [Kind]: TENSOR_KIND, docarrayType: tag }) as TTensor;
}

/** A tensor field (`NdArray`); docarray's `NdArray`/`AnyTensor`. */
export const Tensor = tensor('ndarray');
/** An embedding vector; docarray's `NdArrayEmbedding`. */
export const Embedding = tensor('ndarray_embedding');
/** An image tensor (H, W, C); docarray's `ImageNdArray`. */
export const ImageTensor = tensor('image_ndarray');
/** An audio tensor; docarray's `AudioNdArray`. */
export const AudioTensor = tensor('audio_ndarray');
/** A video tensor; docarray's `VideoNdArray`. */
export const VideoTensor = tensor('video_ndarray');

function url(tag: UrlTag) {
  // No `format: 'uri'`: docarray URLs also take bare paths (`s3://b/k`, `./page.png`).
  return (options: SchemaOptions = {}): TString => Type.String({ ...options, docarrayType: tag });
}

export const AnyUrl = url('any_url');
export const ImageUrl = url('image_url');
export const AudioUrl = url('audio_url');
export const VideoUrl = url('video_url');
export const TextUrl = url('text_url');
export const Mesh3DUrl = url('mesh_url');
export const PointCloud3DUrl = url('point_cloud_url');

function bytes(tag: BytesTag) {
  return (options: SchemaOptions = {}): TUint8Array =>
    Type.Uint8Array({ ...options, docarrayType: tag });
}

/** Raw bytes (`Uint8Array`; base64 in JSON). */
export const Bytes = bytes('bytes');
export const ImageBytes = bytes('image_bytes');
export const AudioBytes = bytes('audio_bytes');
export const VideoBytes = bytes('video_bytes');

/** A dict with string keys (`tags`, `metadata`). */
export function Dict<V extends TSchema = TUnknown>(
  value?: V,
  options: SchemaOptions = {},
): TRecord<TString, V> {
  const schema = Type.Record(Type.String(), value ?? Type.Unknown(), options);
  return schema as unknown as TRecord<TString, V>;
}

/**
 * A list of documents of one type, held as a `DocList`. Pass a thunk for a type that lists itself:
 * `chunks: Docs<LegacyDoc>(() => LegacyDocument)`.
 */
export function Docs<T extends TSchema>(
  docType: T | (() => T),
  options?: SchemaOptions,
): TDocList<T['static']>;
export function Docs<D>(docType: () => TSchema, options?: SchemaOptions): TDocList<D>;
export function Docs(docType: TSchema | (() => TSchema), options: SchemaOptions = {}): TDocList {
  const thunk = typeof docType === 'function' ? docType : () => docType;
  return Type.Unsafe({ ...options, [Kind]: DOC_LIST_KIND, docType: thunk }) as TDocList;
}

export function isTensorSchema(schema: TSchema): schema is TTensor {
  return schema[Kind] === TENSOR_KIND;
}

export function isDocListSchema(schema: TSchema): schema is TDocList {
  return schema[Kind] === DOC_LIST_KIND;
}

export function isDocSchema(schema: TSchema): boolean {
  return (schema as { [DOC_MARKER]?: boolean })[DOC_MARKER] === true;
}
