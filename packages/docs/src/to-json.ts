import { type TSchema, TypeGuard } from '@sinclair/typebox';
import { isDocListSchema, isDocSchema, isTensorSchema } from './fields.js';
import { NdArray, toNumpyDtype } from './ndarray.js';

export interface JsonOptions {
  /**
   * How tensors are written: `list` (nested number lists, what pydantic/docarray peers read; the
   * default) or `base64` (`{ dtype, shape, data }` with numpy dtype strings and little-endian
   * base64 data: exact for every dtype and about 4x smaller for float32), or `auto`: lists where
   * a reader rebuilds the exact tensor from them (the field pins the dtype, or it is float32, the
   * dtype lists are read as), the base64 form otherwise. `auto` is what the JSON transports write.
   */
  tensors?: 'list' | 'base64' | 'auto';
}

type Mode = 'list' | 'base64' | 'auto';

type ToJson = (value: unknown) => unknown;

const cache = {
  list: new WeakMap<TSchema, ToJson>(),
  base64: new WeakMap<TSchema, ToJson>(),
  auto: new WeakMap<TSchema, ToJson>(),
};

/** The JSON converter of a schema: a function from a field value to a JSON-ready value. */
export function toJsonValue(schema: TSchema, options: JsonOptions = {}): ToJson {
  const mode = options.tensors ?? 'list';
  const memo = cache[mode];
  let fn = memo.get(schema);
  if (!fn) {
    // Placeholder first: a document type may list itself (chunks of chunks).
    memo.set(schema, (v) => fn!(v));
    fn = build(schema, mode);
    memo.set(schema, fn);
  }
  return fn;
}

export function tensorToJson(value: NdArray, mode: Mode, pinned?: string): unknown {
  if (mode === 'list' || (mode === 'auto' && value.dtype === (pinned ?? 'float32')))
    return value.toList();
  return {
    dtype: toNumpyDtype(value.dtype),
    shape: [...value.shape],
    data: Buffer.from(value.toBytes()).toString('base64'),
  };
}

function build(schema: TSchema, mode: Mode): ToJson {
  if (isTensorSchema(schema)) {
    return (v) => (v instanceof NdArray ? tensorToJson(v, mode, schema.dtype) : v);
  }
  if (TypeGuard.IsUint8Array(schema)) {
    return (v) =>
      v instanceof Uint8Array
        ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
        : v;
  }
  if (isDocListSchema(schema)) {
    let item: ToJson | undefined;
    return (v) => {
      if (!Array.isArray(v)) return v;
      item ??= toJsonValue(schema.docType(), { tensors: mode });
      return v.map(item);
    };
  }
  if (isDocSchema(schema) || TypeGuard.IsObject(schema)) {
    const fields = Object.entries(schema.properties as Record<string, TSchema>).map(
      ([key, s]) => [key, toJsonValue(s, { tensors: mode })] as const,
    );
    const keepExtra = !isDocSchema(schema) || schema.additionalProperties === true;
    const extra = anyToJson(mode);
    return (v) => {
      if (typeof v !== 'object' || v === null) return v;
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = keepExtra ? (extra(src) as Record<string, unknown>) : {};
      for (const [key, conv] of fields) {
        const x = src[key];
        if (x !== undefined) out[key] = x === null ? null : conv(x);
      }
      return out;
    };
  }
  if (TypeGuard.IsArray(schema)) {
    const item = toJsonValue(schema.items, { tensors: mode });
    return (v) => (Array.isArray(v) ? v.map(item) : v);
  }
  if (TypeGuard.IsRecord(schema)) {
    const value = toJsonValue(Object.values(schema.patternProperties)[0] as TSchema, {
      tensors: mode,
    });
    return (v) => {
      if (typeof v !== 'object' || v === null) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = value(x);
      return out;
    };
  }
  return anyToJson(mode);
}

/** Values of untyped fields (`tags`, `Unknown`): tensors and bytes nested anywhere still convert. */
function anyToJson(mode: Mode): ToJson {
  const walk: ToJson = (v) => {
    if (v === null || typeof v !== 'object') return v;
    if (v instanceof NdArray) return tensorToJson(v, mode);
    if (v instanceof Uint8Array)
      return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    if (Array.isArray(v)) return v.map(walk);
    if (Object.getPrototypeOf(v) !== Object.prototype) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x);
    return out;
  };
  return walk;
}
