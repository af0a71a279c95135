import { alignedCopy } from './aligned-copy.js';
import { floatToHalf, halfToFloat } from './half.js';
import { DocValidationError } from './validation-error.js';

/** Element types a tensor can hold. `float16` is stored as raw IEEE-754 half bits in a Uint16Array. */
export type DType =
  | 'float16'
  | 'float32'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

type TypedArrayConstructor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

interface DTypeInfo {
  readonly ctor: TypedArrayConstructor;
  /** numpy `dtype.str` as Python peers write it into DenseNdArrayProto.dtype (spec/wire.md). */
  readonly numpy: string;
}

const DTYPES: Record<DType, DTypeInfo> = {
  float16: { ctor: Uint16Array, numpy: '<f2' },
  float32: { ctor: Float32Array, numpy: '<f4' },
  float64: { ctor: Float64Array, numpy: '<f8' },
  int8: { ctor: Int8Array, numpy: '|i1' },
  int16: { ctor: Int16Array, numpy: '<i2' },
  int32: { ctor: Int32Array, numpy: '<i4' },
  int64: { ctor: BigInt64Array, numpy: '<i8' },
  uint8: { ctor: Uint8Array, numpy: '|u1' },
  uint16: { ctor: Uint16Array, numpy: '<u2' },
  uint32: { ctor: Uint32Array, numpy: '<u4' },
  uint64: { ctor: BigUint64Array, numpy: '<u8' },
  bool: { ctor: Uint8Array, numpy: '|b1' },
};

export const DTYPE_NAMES = Object.keys(DTYPES) as readonly DType[];

const FROM_NUMPY = new Map<string, DType>();
for (const [name, info] of Object.entries(DTYPES) as [DType, DTypeInfo][]) {
  FROM_NUMPY.set(info.numpy, name);
  // numpy writes '=' (native) or '<' interchangeably on little-endian hosts; '|' for 1-byte types.
  FROM_NUMPY.set(info.numpy.replace('<', '='), name);
  FROM_NUMPY.set(info.numpy.replace('|', '<'), name);
}

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

/** numpy dtype string (`<f4`) for a dtype. */
export function toNumpyDtype(dtype: DType): string {
  return DTYPES[dtype].numpy;
}

/** dtype for a numpy dtype string (`<f4`, `float32` and `=f4` all work); undefined when unknown. */
export function fromNumpyDtype(numpy: string): DType | undefined {
  return FROM_NUMPY.get(numpy) ?? (isDType(numpy) ? numpy : undefined);
}

/**
 * A numpy dtype string with its byte order: `<f4`, `=f4`, `float32` are little-endian float32,
 * `>f4` big-endian (numpy arrays of network order or read from some file formats; Python peers
 * send them as they are). Undefined when unknown.
 */
export function parseNumpyDtype(numpy: string): { dtype: DType; bigEndian: boolean } | undefined {
  const little = fromNumpyDtype(numpy);
  if (little !== undefined) return { dtype: little, bigEndian: false };
  if (!numpy.startsWith('>')) return undefined;
  const dtype = FROM_NUMPY.get(`<${numpy.slice(1)}`);
  return dtype === undefined ? undefined : { dtype, bigEndian: true };
}

/** The TypedArray class that holds a dtype's elements. */
export function typedArrayFor(dtype: DType): TypedArrayConstructor {
  return DTYPES[dtype].ctor;
}

const DEFAULT_DTYPE_OF = new Map<string, DType>([
  ['Float32Array', 'float32'],
  ['Float64Array', 'float64'],
  ['Int8Array', 'int8'],
  ['Int16Array', 'int16'],
  ['Int32Array', 'int32'],
  ['BigInt64Array', 'int64'],
  ['Uint8Array', 'uint8'],
  ['Buffer', 'uint8'],
  ['Uint16Array', 'uint16'],
  ['Uint32Array', 'uint32'],
  ['BigUint64Array', 'uint64'],
]);

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A dense, C-ordered tensor: a dtype, a shape and a TypedArray holding the elements. This is what
 * every tensor-typed document field holds (embeddings and image tensors included).
 */
export class NdArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
  #data: TypedArray | undefined;
  /**
   * Little-endian bytes not yet copied into `#data`: a tensor read from a message at an offset
   * its element type cannot be viewed at. The copy is made when `data` is first read; a tensor
   * that is only passed on (an executor that leaves it alone) is written out from these bytes and
   * never copied. Nothing can have changed them: whoever changes a tensor reads `data` first.
   * (Each copy is external memory to V8, and external memory drives its major GCs.)
   */
  #bytes: Uint8Array | undefined;

  /**
   * @param data elements in C order; its class must fit the dtype (Uint16Array for float16,
   *   Uint8Array for bool)
   * @param shape defaults to `[data.length]`
   * @param dtype defaults to the dtype of the TypedArray class
   */
  constructor(data: TypedArray, shape?: readonly number[], dtype?: DType);
  constructor(data: TypedArray | Unaligned, shape?: readonly number[], dtype?: DType) {
    if (data instanceof Unaligned) {
      // From fromBytes, which has checked the dtype, the shape and the byte count.
      this.#bytes = data.bytes;
      this.shape = Object.freeze([...shape!]);
      this.dtype = dtype!;
      return;
    }
    const kind = data.constructor.name;
    const resolved = dtype ?? DEFAULT_DTYPE_OF.get(kind);
    if (resolved === undefined) throw new TypeError(`NdArray: unsupported array type ${kind}`);
    const ctor = DTYPES[resolved].ctor;
    if (!(data instanceof ctor)) {
      throw new TypeError(`NdArray: dtype ${resolved} needs a ${ctor.name}, got ${kind}`);
    }
    const dims = shape ?? [data.length];
    checkShape(dims, data.length);
    this.#data = data;
    this.shape = Object.freeze([...dims]);
    this.dtype = resolved;
  }

  /** The elements in C order (a TypedArray of the dtype's class). */
  get data(): TypedArray {
    if (this.#data === undefined) {
      const bytes = alignedCopy(this.#bytes!);
      const ctor = DTYPES[this.dtype].ctor;
      const length = bytes.byteLength / ctor.BYTES_PER_ELEMENT;
      this.#data = new ctor(bytes.buffer, bytes.byteOffset, length);
      this.#bytes = undefined;
    }
    return this.#data;
  }

  get size(): number {
    if (this.#data !== undefined) return this.#data.length;
    return this.#bytes!.byteLength / DTYPES[this.dtype].ctor.BYTES_PER_ELEMENT;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Elements as JS values: numbers (float16 decoded), booleans for bool, int64 as numbers when safe, else strings. */
  values(): (number | boolean | string)[] {
    const { data, dtype } = this;
    if (dtype === 'float16') return Array.from(data as Uint16Array, halfToFloat);
    if (dtype === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
    if (dtype === 'int64' || dtype === 'uint64') {
      return Array.from(data as BigInt64Array, (v) => {
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : v.toString();
      });
    }
    return Array.from(data as Float32Array);
  }

  /** Nested JS arrays shaped like the tensor, as numpy's `tolist()` gives. */
  toList(): unknown {
    const flat = this.values();
    if (this.shape.length === 0) return flat[0];
    if (this.shape.length === 1) return flat;
    return nest(flat, this.shape, 0, 0);
  }

  /** JSON form: nested lists (what pydantic/docarray peers read and write). */
  toJSON(): unknown {
    return this.toList();
  }

  /** Raw little-endian bytes, C order. A view (no copy) on little-endian hosts. */
  toBytes(): Uint8Array {
    if (this.#data === undefined) return this.#bytes!; // only little-endian hosts defer the copy
    const view = new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    if (LITTLE_ENDIAN) return view;
    return swapBytes(view, this.data.BYTES_PER_ELEMENT);
  }

  /**
   * Builds a tensor over raw bytes, little-endian unless `bigEndian`; a view of them when this
   * host's order and the alignment allow, else one copy (swapped, or made when `data` is read).
   */
  static fromBytes(
    bytes: Uint8Array,
    shape: readonly number[],
    dtype: DType,
    bigEndian = false,
  ): NdArray {
    const ctor = DTYPES[dtype].ctor;
    const width = ctor.BYTES_PER_ELEMENT;
    if (bytes.byteLength % width !== 0) {
      throw new TypeError(`NdArray: ${bytes.byteLength} bytes is not a whole number of ${dtype}`);
    }
    const length = bytes.byteLength / width;
    // Bytes in the other order than this host's: one copy, swapped natively.
    if (width > 1 && bigEndian === LITTLE_ENDIAN) {
      const swapped = swapBytes(bytes, width);
      return new NdArray(new ctor(swapped.buffer, 0, length), shape, dtype);
    }
    if (bytes.byteOffset % width === 0) {
      return new NdArray(new ctor(bytes.buffer, bytes.byteOffset, length), shape, dtype);
    }
    // Misaligned (inside a received message): copied when `data` is first read, if ever.
    checkShape(shape, length);
    return new NdArray(new Unaligned(bytes) as unknown as TypedArray, shape, dtype);
  }

  /**
   * Builds a tensor from nested lists (`[[1, 2], [3, 4]]`), checking that they are rectangular.
   * Numbers are written into `dtype` (float32 unless given); booleans into bool.
   */
  static fromList(list: unknown, dtype: DType = 'float32', path = 'tensor'): NdArray {
    const shape: number[] = [];
    let probe: unknown = list;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    let size = 1;
    for (const d of shape) size *= d;
    const data = new DTYPES[dtype].ctor(size);
    const write = makeWriter(dtype, data);
    // Element paths are only spelled out when something is wrong: this runs per number.
    const index: number[] = [];
    const at = () => path + index.map((i) => `[${i}]`).join('');
    let offset = 0;
    const walk = (node: unknown, depth: number): void => {
      if (depth === shape.length) {
        if (Array.isArray(node))
          throw new DocValidationError(at(), 'ragged nested list (too deep)');
        if (!write(offset++, node)) {
          throw new DocValidationError(
            at(),
            `expected ${elementName(dtype)}, got ${describe(node)}`,
          );
        }
        return;
      }
      if (!Array.isArray(node) || node.length !== shape[depth]) {
        throw new DocValidationError(
          at(),
          `ragged nested list (expected a list of ${shape[depth]} at depth ${depth})`,
        );
      }
      index.push(0);
      for (let i = 0; i < node.length; i++) {
        index[depth] = i;
        walk(node[i], depth + 1);
      }
      index.pop();
    };
    walk(list, 0);
    return new NdArray(data, shape, dtype);
  }

  equals(other: NdArray): boolean {
    if (other.dtype !== this.dtype || other.shape.length !== this.shape.length) return false;
    if (other.shape.some((d, i) => d !== this.shape[i])) return false;
    const a = this.toBytes();
    const b = other.toBytes();
    return a.length === b.length && Buffer.compare(a, b) === 0;
  }
}

/** Throws unless `dims` is a shape of whole numbers holding exactly `length` elements. */
function checkShape(dims: readonly number[], length: number): void {
  let size = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new TypeError(`NdArray: bad shape [${dims}]`);
    size *= d;
  }
  if (size !== length) {
    throw new TypeError(
      `NdArray: shape [${dims}] holds ${size} elements but the data has ${length}`,
    );
  }
}

/** Bytes handed to the constructor by fromBytes (module-private: not a TypedArray). */
class Unaligned {
  constructor(readonly bytes: Uint8Array) {}
}

function nest(flat: unknown[], shape: readonly number[], depth: number, offset: number): unknown[] {
  const n = shape[depth] ?? 0;
  if (depth === shape.length - 1) return flat.slice(offset, offset + n);
  let stride = 1;
  for (let i = depth + 1; i < shape.length; i++) stride *= shape[i] ?? 0;
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = nest(flat, shape, depth + 1, offset + i * stride);
  return out;
}

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

function elementName(dtype: DType): string {
  if (dtype === 'bool') return 'a boolean';
  if (dtype.startsWith('float')) return 'a number';
  return `an integer in ${dtype} range`;
}

/** Writes one element; false when the value does not fit the dtype. */
function makeWriter(dtype: DType, data: TypedArray): (index: number, value: unknown) => boolean {
  if (dtype === 'bool') {
    return (i, v) => {
      if (typeof v === 'boolean') data[i] = v ? 1 : 0;
      else if (v === 0 || v === 1) data[i] = v;
      else return false;
      return true;
    };
  }
  if (dtype === 'int64' || dtype === 'uint64') {
    const [min, max] = dtype === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    return (i, v) => {
      let big: bigint | undefined;
      if (typeof v === 'bigint') big = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) big = BigInt(v);
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) big = BigInt(v);
      if (big === undefined || big < min || big > max) return false;
      data[i] = big;
      return true;
    };
  }
  const range = INT_RANGE[dtype];
  if (range) {
    const [min, max] = range;
    return (i, v) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return false;
      data[i] = v;
      return true;
    };
  }
  const half = dtype === 'float16';
  return (i, v) => {
    if (typeof v !== 'number') return false;
    data[i] = half ? floatToHalf(v) : v;
    return true;
  };
}

/** A copy of `bytes` with each `width`-byte element's bytes reversed (Buffer's native swaps). */
function swapBytes(bytes: Uint8Array, width: number): Uint8Array {
  // A buffer of its own (offset 0): every element class can view it.
  const out = Buffer.allocUnsafeSlow(bytes.byteLength);
  out.set(bytes);
  if (width === 2) out.swap16();
  else if (width === 4) out.swap32();
  else if (width === 8) out.swap64();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof NdArray) return `NdArray<${value.dtype}>[${value.shape}]`;
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'object')
    return value.constructor?.name === 'Object'
      ? 'object'
      : String(value.constructor?.name ?? 'object');
  if (typeof value === 'string')
    return value.length > 20 ? 'string' : `string ${JSON.stringify(value)}`;
  return typeof value;
}

/** Re-throws a TypeError from NdArray construction as a validation error at `path`. */
export function tensorError(path: string, err: unknown): DocValidationError {
  if (err instanceof DocValidationError) return err;
  const message = err instanceof Error ? err.message.replace(/^NdArray: /, '') : String(err);
  return new DocValidationError(path, message);
}
