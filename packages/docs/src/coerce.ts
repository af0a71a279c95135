import { Kind, type TSchema, TypeGuard } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { newDocId } from './define-doc.js';
import {
  isDocListSchema,
  isDocSchema,
  isTensorSchema,
  shapeMatches,
  type TTensor,
} from './fields.js';
import {
  describe,
  fromNumpyDtype,
  isTypedArray,
  NdArray,
  tensorError,
  typedArrayFor,
} from './ndarray.js';
import { checkTensorSize } from './tensor-limit.js';
import { DocValidationError } from './validation-error.js';

/**
 * Turns an input value (plain object, parsed JSON) into the value a field holds: tensors become
 * NdArray, base64 becomes bytes, lists of documents become DocLists, nested documents get ids and
 * defaults. Structural checks (types, required fields, constraints) are left to TypeBox afterwards.
 */
export type Prepare = (value: unknown, path: string) => unknown;

/** Hook filled by doc-list.ts, which owns DocList (avoids an import cycle). */
export const docListHooks: {
  prepare?: (docType: TSchema, value: unknown, path: string) => unknown;
} = {};

const prepared = new WeakMap<TSchema, Prepare | null>();

/** The preparer of a schema, or null when values pass through unchanged. */
export function preparerOf(schema: TSchema): Prepare | null {
  let p = prepared.get(schema);
  if (p === undefined) {
    // Reserve the slot first so that a document type listing itself terminates.
    prepared.set(schema, null);
    p = buildPreparer(schema);
    prepared.set(schema, p);
  }
  return p;
}

function buildPreparer(schema: TSchema): Prepare | null {
  if (isDocSchema(schema)) return docPreparer(schema);
  if (isTensorSchema(schema)) return (v, path) => toNdArray(v, schema, path);
  if (isDocListSchema(schema)) {
    return (v, path) => docListHooks.prepare!(schema.docType(), v, path);
  }
  if (TypeGuard.IsUint8Array(schema)) return toBytes;
  if (TypeGuard.IsArray(schema)) {
    const item = preparerOf(schema.items);
    if (!item) return null;
    return (v, path) => (Array.isArray(v) ? v.map((x, i) => item(x, `${path}[${i}]`)) : v);
  }
  if (TypeGuard.IsRecord(schema)) {
    const valueSchema = Object.values(schema.patternProperties)[0] as TSchema;
    const value = preparerOf(valueSchema);
    if (!value) return null;
    return (v, path) => {
      if (!isPlainObject(v)) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = value(x, `${path}.${k}`);
      return out;
    };
  }
  if (TypeGuard.IsObject(schema)) {
    const fields = Object.entries(schema.properties)
      .map(([key, s]) => ({ key, fallback: s.default as unknown, prepare: preparerOf(s) }))
      .filter((f) => f.prepare !== null || f.fallback !== undefined);
    if (fields.length === 0) return null;
    return (v, path) => {
      if (!isPlainObject(v)) return v;
      const out: Record<string, unknown> = { ...v };
      for (const { key, fallback, prepare } of fields) {
        if (out[key] === undefined) {
          if (fallback !== undefined) out[key] = cloneDefault(fallback);
        } else if (out[key] !== null && prepare) {
          out[key] = prepare(out[key], `${path}.${key}`);
        }
      }
      return out;
    };
  }
  if (TypeGuard.IsUnion(schema)) {
    const variants = schema.anyOf.map(preparerOf).filter((p): p is Prepare => p !== null);
    if (variants.length === 0) return null;
    return (v, path) => {
      if (v === null || v === undefined) return v;
      let first: unknown;
      for (const p of variants) {
        try {
          return p(v, path);
        } catch (err) {
          first ??= err;
        }
      }
      throw first;
    };
  }
  return null;
}

interface FieldPlan {
  key: string;
  schema: TSchema;
  optional: boolean;
  prepare: Prepare | null;
}

function docPreparer(schema: TSchema): Prepare {
  let plan: FieldPlan[] | undefined;
  return (value, path) => {
    if (!isPlainObject(value)) {
      throw new DocValidationError(path, `expected a document object, got ${describe(value)}`);
    }
    plan ??= Object.entries(schema.properties as Record<string, TSchema>).map(([key, s]) => ({
      key,
      schema: s,
      optional: TypeGuard.IsOptional(s),
      prepare: preparerOf(s),
    }));
    // Open document types (AnyDoc) keep the keys they do not declare, as they came.
    const out: Record<string, unknown> = schema.additionalProperties === true ? { ...value } : {};
    for (const f of plan) {
      let v = value[f.key];
      if (v === undefined || v === null) {
        if (f.key === 'id') {
          out.id = newDocId();
          continue;
        }
        if (f.schema.default === undefined) {
          // An absent optional field stays absent; docarray peers send `null` for it.
          if (v === null && !f.optional) out[f.key] = null;
          continue;
        }
        v = cloneDefault(f.schema.default);
      }
      out[f.key] = f.prepare ? f.prepare(v, `${path}.${f.key}`) : v;
    }
    return out;
  };
}

function cloneDefault(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Bytes from a Uint8Array (kept), a base64 string or a list of byte values. */
export function toBytes(value: unknown, path: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') {
    if (!BASE64.test(value)) throw new DocValidationError(path, 'expected base64 bytes');
    const buf = Buffer.from(
      value,
      value.includes('-') || value.includes('_') ? 'base64url' : 'base64',
    );
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  if (Array.isArray(value) && value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    return Uint8Array.from(value as number[]);
  }
  throw new DocValidationError(
    path,
    `expected bytes (Uint8Array or base64 string), got ${describe(value)}`,
  );
}

/**
 * A tensor from an NdArray, a TypedArray, nested number lists or the JSON form
 * `{ dtype, shape, data: base64 }`.
 */
export function toNdArray(value: unknown, schema: TTensor, path: string): NdArray {
  const want = schema.dtype;
  let out: NdArray;
  try {
    if (value instanceof NdArray) {
      out = value;
    } else if (isTypedArray(value)) {
      if (want !== undefined && !(value instanceof typedArrayFor(want))) {
        throw new DocValidationError(
          path,
          `expected ${typedArrayFor(want).name} (${want}), got ${describe(value)}`,
        );
      }
      out = new NdArray(value, undefined, want);
    } else if (Array.isArray(value)) {
      out = NdArray.fromList(value, want ?? 'float32', path);
      checkTensorSize(out.shape, path);
    } else if (isPlainObject(value) && typeof value.dtype === 'string' && 'data' in value) {
      out = fromJsonTensor(value, path);
    } else {
      const kind = want ? `${typedArrayFor(want).name} (${want})` : 'a tensor';
      throw new DocValidationError(
        path,
        `expected ${kind}: an NdArray, TypedArray, nested number list or {dtype, shape, data}; got ${describe(value)}`,
      );
    }
  } catch (err) {
    throw tensorError(path, err);
  }
  if (want !== undefined && out.dtype !== want) {
    throw new DocValidationError(path, `expected dtype ${want}, got ${out.dtype}`);
  }
  if (!shapeMatches(schema.shape, out.shape)) {
    const fmt = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? '*').join(', ')}]`;
    throw new DocValidationError(
      path,
      `expected shape ${fmt(schema.shape!)}, got ${fmt(out.shape)}`,
    );
  }
  return out;
}

function fromJsonTensor(value: Record<string, unknown>, path: string): NdArray {
  const dtype = fromNumpyDtype(value.dtype as string);
  if (!dtype)
    throw new DocValidationError(`${path}.dtype`, `unknown dtype ${JSON.stringify(value.dtype)}`);
  const shape = value.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new DocValidationError(`${path}.shape`, 'expected a list of non-negative integers');
  }
  checkTensorSize(shape as number[], path);
  const data = toBytes(value.data, `${path}.data`);
  return NdArray.fromBytes(data, shape as number[], dtype);
}

const checkers = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checkerOf(schema: TSchema): TypeCheck<TSchema> {
  let c = checkers.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    checkers.set(schema, c);
  }
  return c;
}

/** Applies preparation, defaults and TypeBox validation; throws a DocValidationError naming the path. */
export function coerce(schema: TSchema, value: unknown, path: string): unknown {
  const prepare = preparerOf(schema);
  const out = prepare ? prepare(value, path) : value;
  const checker = checkerOf(schema);
  if (!checker.Check(out)) throw toValidationError(checker.Errors(out).First(), path);
  return out;
}

function toValidationError(error: ValueError | undefined, root: string): DocValidationError {
  if (!error) return new DocValidationError(root, 'invalid value');
  const at = root + pointerToPath(error.path);
  if (error.type === ValueErrorType.ObjectRequiredProperty) {
    return new DocValidationError(at, 'required field is missing');
  }
  if (error.schema[Kind] === 'MarieNdArray' || error.schema[Kind] === 'MarieDocList') {
    return new DocValidationError(
      at,
      `expected ${error.schema[Kind] === 'MarieNdArray' ? 'a tensor' : 'a DocList'}, got ${describe(error.value)}`,
    );
  }
  // A choice of constants (`Type.Union` of literals): say which.
  const choices = (error.schema.anyOf as TSchema[] | undefined)?.map((s) => s.const);
  if (choices?.length && choices.every((c) => c !== undefined))
    return new DocValidationError(
      at,
      `expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describe(error.value)}`,
    );
  const message = error.message.charAt(0).toLowerCase() + error.message.slice(1);
  return new DocValidationError(at, `${message}, got ${describe(error.value)}`);
}

function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((seg) => seg.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`))
    .join('');
}
