import { type TSchema, TypeGuard } from '@sinclair/typebox';
import { isDocListSchema, isDocSchema, isTensorSchema } from './fields.js';

export type JsonSchema = Record<string, unknown>;

const TENSOR_OBJECT: JsonSchema = {
  type: 'object',
  required: ['dtype', 'shape', 'data'],
  properties: {
    dtype: { type: 'string', description: 'numpy dtype string, e.g. <f8, <i8, |b1' },
    shape: { type: 'array', items: { type: 'integer' } },
    data: { type: 'string', contentEncoding: 'base64', description: 'little-endian C-order bytes' },
  },
};

// TypeBox keys that are not JSON Schema, and ours that a peer does not need.
const DROP = new Set(['$id', 'docarrayType', 'docType', 'patternProperties', 'static', 'params']);

/**
 * A JSON Schema of a document type, pydantic style: `title`, `type: object`, `properties`,
 * `required`, and nested document types under `$defs` referenced by `$ref: '#/$defs/Name'`.
 * A Python peer (Jina's `create_base_doc_from_schema`) turns it back into a model. Docarray's own
 * markers are kept as `x-docarray-type` so a peer can rebuild tensors, URLs and bytes exactly.
 */
export function toJsonSchema(docType: TSchema): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  const root = objectSchema(docType, defs);
  if (Object.keys(defs).length > 0) root.$defs = defs;
  return root;
}

function objectSchema(schema: TSchema, defs: Record<string, JsonSchema>): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
    let out = convert(prop, defs);
    out.title ??= titleCase(key);
    const optional = TypeGuard.IsOptional(prop);
    if (optional) {
      // pydantic writes Optional[X] = None as anyOf [X, null] with a null default.
      const { title, description, ...rest } = out;
      out = { anyOf: [rest, { type: 'null' }], default: null, title };
      if (description !== undefined) out.description = description;
    }
    if (key !== 'id' && !optional && prop.default === undefined) required.push(key);
    properties[key] = out;
  }
  const out: JsonSchema = { ...annotations(schema), type: 'object', properties };
  if (required.length > 0) out.required = required;
  return out;
}

function convert(schema: TSchema, defs: Record<string, JsonSchema>): JsonSchema {
  const base = annotations(schema);
  if (isDocSchema(schema)) {
    const name = schema.$id as string;
    if (!(name in defs)) {
      defs[name] = {}; // claim the name first: a type may refer to itself
      defs[name] = objectSchema(schema, defs);
    }
    return { ...pick(base, ['description']), $ref: `#/$defs/${name}` };
  }
  if (isTensorSchema(schema)) {
    const list: JsonSchema = {
      type: 'array',
      items: { type: schema.dtype === 'bool' ? 'boolean' : 'number' },
    };
    // A field that pins its dtype travels as nested lists; an open one may also carry
    // {dtype, shape, data}, the JSON form that keeps a non-float32 tensor exact.
    const out: JsonSchema =
      schema.dtype === undefined
        ? { ...base, anyOf: [{ type: 'array', items: {} }, TENSOR_OBJECT] }
        : { ...base, ...list };
    out['x-docarray-type'] = schema.docarrayType;
    if (schema.dtype) out['x-dtype'] = schema.dtype;
    if (schema.shape) out['x-shape'] = schema.shape;
    return out;
  }
  if (isDocListSchema(schema)) {
    return { ...base, type: 'array', items: convert(schema.docType(), defs) };
  }
  if (TypeGuard.IsUint8Array(schema)) {
    return {
      ...stripBinary(base),
      type: 'string',
      format: 'binary',
      'x-docarray-type': schema.docarrayType ?? 'bytes',
    };
  }
  if (TypeGuard.IsRecord(schema)) {
    const value = Object.values(schema.patternProperties)[0] as TSchema;
    const additional =
      TypeGuard.IsUnknown(value) || TypeGuard.IsAny(value) ? true : convert(value, defs);
    return { ...base, type: 'object', additionalProperties: additional };
  }
  if (TypeGuard.IsObject(schema)) return objectSchema(schema, defs);
  if (TypeGuard.IsArray(schema)) return { ...base, items: convert(schema.items, defs) };
  if (TypeGuard.IsUnion(schema)) {
    return { ...base, anyOf: schema.anyOf.map((s) => convert(s, defs)) };
  }
  if (TypeGuard.IsIntersect(schema)) {
    return { ...base, allOf: schema.allOf.map((s) => convert(s, defs)) };
  }
  if (schema.docarrayType && TypeGuard.IsString(schema) && schema.docarrayType !== 'id') {
    base['x-docarray-type'] = schema.docarrayType;
  }
  return base;
}

/** The JSON keys of a TypeBox schema (symbols and TypeBox-only keys left out). */
function annotations(schema: TSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (
      DROP.has(k) ||
      k === 'properties' ||
      k === 'required' ||
      k === 'items' ||
      k === 'anyOf' ||
      k === 'allOf'
    )
      continue;
    if (typeof v === 'function') continue;
    out[k] = v;
  }
  return out;
}

function stripBinary(base: JsonSchema): JsonSchema {
  const { default: _default, ...rest } = base;
  return rest;
}

function pick(obj: JsonSchema, keys: string[]): JsonSchema {
  const out: JsonSchema = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function titleCase(key: string): string {
  return key
    .split('_')
    .filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}
