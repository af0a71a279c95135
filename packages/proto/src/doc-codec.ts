import {
  checkTensorSize,
  DocList,
  DocValidationError,
  isDocListSchema,
  isDocSchema,
  isPlainObject,
  isTensorSchema,
  NdArray,
  parseNumpyDtype,
  type TSchema,
  toNumpyDtype,
  typedArrayFor,
} from '@marie/docs';
import type { DocListProto, DocProto, NodeProto } from './generated/docarray.js';

// docarray's type tags for tensors from other frameworks: a reader treats them as ndarray
// (spec/wire.md).
const TENSOR_TAGS =
  /^(ndarray|ndarray_embedding|image_ndarray|audio_ndarray|video_ndarray|(torch|tensorflow)(_tensor|_embedding|_image|_audio|_video)?.*|jaxarray.*)$/;

/** Whether a NodeProto's type tag names a tensor (docarray's, or another framework's). */
export function isTensorTag(type: string): boolean {
  return TENSOR_TAGS.test(type);
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

type Encode = (value: unknown) => NodeProto;

const encoders = new WeakMap<TSchema, (doc: object) => DocProto>();

/** The DocProto of a document, its field types (tags, int vs float) taken from its schema. */
export function docToProto(doc: object, schema: TSchema): DocProto {
  let encode = encoders.get(schema);
  if (!encode) {
    encode = compileDocEncoder(schema);
    encoders.set(schema, encode);
  }
  return encode(doc);
}

/** The DocListProto of documents; plain objects without a DocList use `schema` (or are inferred). */
export function docListToProto(docs: readonly object[], schema?: TSchema): DocListProto {
  // A DocList knows its own type best; plain objects take the given schema, or are inferred.
  const type = docs instanceof DocList ? docs.docType : schema;
  const out = new Array<DocProto>(docs.length);
  for (let i = 0; i < docs.length; i++) {
    out[i] = type
      ? docToProto(docs[i]!, type)
      : { data: encodeObject(docs[i] as Record<string, unknown>) };
  }
  return { docs: out };
}

function compileDocEncoder(schema: TSchema): (doc: object) => DocProto {
  const open = schema.additionalProperties === true;
  let fields: [string, Encode][] | undefined;
  return (doc) => {
    fields ??= Object.entries(schema.properties as Record<string, TSchema>).map(([key, s]) => [
      key,
      fieldEncoder(s, key),
    ]);
    const src = doc as Record<string, unknown>;
    // Open document types (AnyDoc) send the fields they do not declare too.
    const data: Record<string, NodeProto> = open ? encodeObject(src) : {};
    // Every field of the schema is an entry; a missing one is an empty NodeProto (docarray's None).
    for (const [key, encode] of fields) {
      const v = src[key];
      data[key] = v === undefined || v === null ? {} : encode(v);
    }
    return { data };
  };
}

function fieldEncoder(schema: TSchema, key?: string): Encode {
  const tag = schema.docarrayType as string | undefined;
  if (key === 'id' || tag === 'id') return (v) => ({ text: String(v), type: 'id' });
  if (isTensorSchema(schema)) return (v) => tensorNode(v, schema.docarrayType);
  if (isDocSchema(schema)) return (v) => ({ doc: docToProto(v as object, schema) });
  if (isDocListSchema(schema)) {
    return (v) => ({ docArray: docListToProto(v as object[], schema.docType()) });
  }
  switch (schema.type) {
    case 'string':
      return tag
        ? (v) => ({ text: String(v), type: tag })
        : (v) => (typeof v === 'string' ? { text: v } : encodeAny(v));
    case 'integer':
      return (v) => numberNode(v as number);
    case 'number':
      // A float field sends floats, integral or not, as pydantic's `float` expects.
      return (v) => (typeof v === 'number' ? { float: v } : encodeAny(v));
    case 'boolean':
      return (v) => (typeof v === 'boolean' ? { boolean: v } : encodeAny(v));
    case 'Uint8Array':
      return tag && tag !== 'bytes'
        ? (v) => ({ blob: v as Uint8Array, type: tag })
        : (v) => ({ blob: v as Uint8Array });
    case 'array': {
      const item = schema.items ? fieldEncoder(schema.items as TSchema) : encodeAny;
      return (v) =>
        Array.isArray(v)
          ? { list: { data: v.map((x) => (x === null || x === undefined ? {} : item(x))) } }
          : encodeAny(v);
    }
    default:
      return encodeAny;
  }
}

function tensorNode(v: unknown, tag: string): NodeProto {
  if (!(v instanceof NdArray)) return encodeAny(v);
  return {
    ndarray: { dense: { buffer: v.toBytes(), shape: [...v.shape], dtype: toNumpyDtype(v.dtype) } },
    type: tag,
  };
}

function numberNode(n: number): NodeProto {
  // int32 on the wire (NodeProto.integer); larger integers travel as float (spec/wire.md).
  return Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX ? { integer: n } : { float: n };
}

/** A value of no declared type, by its JavaScript type. */
export function encodeAny(v: unknown): NodeProto {
  if (v === null || v === undefined) return {};
  switch (typeof v) {
    case 'string':
      return { text: v };
    case 'number':
      return numberNode(v);
    case 'boolean':
      return { boolean: v };
    case 'bigint':
      return { text: v.toString() };
  }
  if (v instanceof NdArray) return tensorNode(v, 'ndarray');
  if (v instanceof Uint8Array) return { blob: v };
  if (v instanceof DocList) return { docArray: docListToProto(v, v.docType) };
  if (Array.isArray(v)) return { list: { data: v.map(encodeAny) } };
  if (v instanceof Set) return { set: { data: [...v].map(encodeAny) } };
  if (v instanceof Date) return { text: v.toISOString() };
  if (isPlainObject(v)) return { dict: { data: encodeObject(v) } };
  throw new DocValidationError(
    'value',
    `cannot send a ${(v as object).constructor?.name ?? typeof v} over the wire`,
  );
}

function encodeObject(obj: Record<string, unknown>): Record<string, NodeProto> {
  const data: Record<string, NodeProto> = {};
  for (const [k, x] of Object.entries(obj)) {
    if (x === undefined) continue;
    data[k] = k === 'id' && typeof x === 'string' ? { text: x, type: 'id' } : encodeAny(x);
  }
  return data;
}

/**
 * A document from its DocProto, as plain values by wire type: tensors become NdArray, blobs
 * Uint8Array, nested docs objects, doc arrays arrays of objects. The receiving DocList validates
 * them against its schema (and ignores keys the schema does not have).
 */
export function docFromProto(proto: DocProto, path = 'doc'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in proto.data) {
    const value = nodeValue(proto.data[key]!, `${path}.${key}`);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Documents from a DocListProto as plain objects (see docFromProto). */
export function docsFromProto(
  proto: DocListProto | undefined,
  path = 'docs',
): Record<string, unknown>[] {
  const docs = proto?.docs ?? [];
  const out = new Array<Record<string, unknown>>(docs.length);
  for (let i = 0; i < docs.length; i++) out[i] = docFromProto(docs[i]!, `${path}[${i}]`);
  return out;
}

function nodeValue(node: NodeProto, path: string): unknown {
  if (node.text !== undefined) return node.text;
  if (node.integer !== undefined) return node.integer;
  if (node.float !== undefined) return node.float;
  if (node.boolean !== undefined) return node.boolean;
  // A plain Uint8Array view (the reader hands out Buffer views of the message).
  if (node.blob !== undefined)
    return new Uint8Array(node.blob.buffer, node.blob.byteOffset, node.blob.byteLength);
  if (node.ndarray !== undefined) return tensorFromDense(node.ndarray.dense, node.type, path);
  if (node.doc !== undefined) return docFromProto(node.doc, path);
  if (node.docArray !== undefined) return docsFromProto(node.docArray, path);
  const list = node.list ?? node.tuple;
  if (list !== undefined) return list.data.map((n, i) => nodeValue(n, `${path}[${i}]`) ?? null);
  if (node.set !== undefined)
    return node.set.data.map((n, i) => nodeValue(n, `${path}[${i}]`) ?? null);
  if (node.dict !== undefined) {
    const out: Record<string, unknown> = {};
    for (const k in node.dict.data) out[k] = nodeValue(node.dict.data[k]!, `${path}.${k}`) ?? null;
    return out;
  }
  return undefined; // an empty NodeProto: docarray's None
}

/**
 * A tensor from DenseNdArrayProto parts, checking the type tag, the dtype and that shape and bytes
 * agree; errors name the field.
 */
export function tensorFromDense(
  dense: { buffer?: Uint8Array; shape: number[]; dtype: string } | undefined,
  type: string | undefined,
  path: string,
): NdArray {
  if (type !== undefined && !TENSOR_TAGS.test(type))
    throw new DocValidationError(path, `unknown tensor type "${type}"`);
  if (!dense) throw new DocValidationError(path, 'tensor without dense data');
  const parsed = parseNumpyDtype(dense.dtype);
  if (!parsed) throw new DocValidationError(path, `unsupported dtype "${dense.dtype}"`);
  const { dtype, bigEndian } = parsed;
  checkTensorSize(dense.shape, path);
  const buffer = dense.buffer ?? new Uint8Array(0);
  let size = 1;
  for (const d of dense.shape) size *= d;
  const need = size * typedArrayFor(dtype).BYTES_PER_ELEMENT;
  if (need !== buffer.byteLength) {
    throw new DocValidationError(
      path,
      `tensor of shape [${dense.shape.join(', ')}] and dtype ${dtype} needs ${need} bytes, got ${buffer.byteLength}`,
    );
  }
  return NdArray.fromBytes(buffer, dense.shape, dtype, bigEndian);
}
