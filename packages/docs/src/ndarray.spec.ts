import { describe, expect, it } from 'vitest';
import {
  DocList,
  DTYPE_NAMES,
  defineDoc,
  floatToHalf,
  fromNumpyDtype,
  halfToFloat,
  NdArray,
  parseNumpyDtype,
  Tensor,
  toNumpyDtype,
  typedArrayFor,
} from './index.js';

const samples: Record<string, unknown[]> = {
  float16: [0, 1, -2.5, 65504, 0.000061035156],
  float32: [0.1, -3.4e38, 1e-45, 7],
  float64: [0.1, Number.MAX_VALUE, -Number.MIN_VALUE],
  int8: [-128, 0, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  int64: ['-9223372036854775808', 9007199254740991, '9223372036854775807'],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: ['18446744073709551615', 0],
  bool: [true, false, true],
};

describe('NdArray', () => {
  it('round-trips every dtype through nested lists, bytes and JSON', () => {
    for (const dtype of DTYPE_NAMES) {
      const values = samples[dtype]!;
      const t = NdArray.fromList([values, values], dtype);
      expect(t.shape).toEqual([2, values.length]);
      expect(t.data).toBeInstanceOf(typedArrayFor(dtype));
      expect(NdArray.fromList(t.toList(), dtype).equals(t)).toBe(true);
      expect(NdArray.fromBytes(t.toBytes(), t.shape, dtype).equals(t)).toBe(true);
      const T = defineDoc('T', { t: Tensor({ dtype }) });
      const docs = new DocList(T, [{ t }]);
      for (const tensors of ['list', 'base64'] as const) {
        const back = DocList.fromJSON(T, JSON.stringify(docs.toJSON({ tensors })));
        expect(back[0]!.t.equals(t), `${dtype} ${tensors}`).toBe(true);
      }
    }
  });

  it('maps dtypes to numpy dtype strings and back', () => {
    expect(toNumpyDtype('float32')).toBe('<f4');
    expect(toNumpyDtype('bool')).toBe('|b1');
    expect(toNumpyDtype('uint8')).toBe('|u1');
    expect(fromNumpyDtype('<f2')).toBe('float16');
    expect(fromNumpyDtype('<i8')).toBe('int64');
    expect(fromNumpyDtype('=f8')).toBe('float64');
    expect(fromNumpyDtype('float32')).toBe('float32');
    expect(fromNumpyDtype('>f4')).toBeUndefined();
    // With their byte order: big-endian ones are read (one swapped copy), unknown ones are not.
    expect(parseNumpyDtype('<f4')).toEqual({ dtype: 'float32', bigEndian: false });
    expect(parseNumpyDtype('>f4')).toEqual({ dtype: 'float32', bigEndian: true });
    expect(parseNumpyDtype('>f2')).toEqual({ dtype: 'float16', bigEndian: true });
    expect(parseNumpyDtype('>u1')).toEqual({ dtype: 'uint8', bigEndian: true });
    expect(parseNumpyDtype('>c8')).toBeUndefined();
    const be = NdArray.fromBytes(
      new Uint8Array([0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]),
      [2],
      'float32',
      true,
    );
    expect(Array.from(be.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('converts half floats with round-to-nearest-even', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(floatToHalf(2 ** -24)).toBe(1);
    for (let h = 0; h < 0x7c00; h += 7) expect(floatToHalf(halfToFloat(h))).toBe(h);
  });

  it('refuses data that does not fit the shape or the dtype', () => {
    expect(() => new NdArray(new Float32Array(6), [4, 2])).toThrow(
      /holds 8 elements but the data has 6/,
    );
    expect(() => new NdArray(new Float32Array(2), [2], 'float64')).toThrow(/needs a Float64Array/);
    expect(() => NdArray.fromList([[1, 2], [3]])).toThrow('tensor[1]: ragged nested list');
    expect(() => NdArray.fromBytes(new Uint8Array(3), [1], 'float32')).toThrow(/whole number/);
  });

  it('reads unaligned bytes by copying them', () => {
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setFloat64(1, 1.5, true);
    expect(NdArray.fromBytes(buf.subarray(1), [1], 'float64').data[0]).toBe(1.5);
    expect(NdArray.fromBytes(Buffer.from(buf.buffer).subarray(1), [1], 'float64').data[0]).toBe(
      1.5,
    );
  });

  it('copies unaligned bytes only when the data is read; writes what the data holds after', () => {
    const buf = new Uint8Array(1 + 3 * 4);
    const view = new DataView(buf.buffer);
    for (let i = 0; i < 3; i++) view.setFloat32(1 + 4 * i, i + 0.5, true);
    const bytes = buf.subarray(1);
    const t = NdArray.fromBytes(bytes, [3], 'float32');
    // Passed on untouched: the same bytes go out, no copy made.
    expect(t.toBytes()).toBe(bytes);
    expect(t.size).toBe(3);
    expect(() => NdArray.fromBytes(bytes, [2], 'float32')).toThrow(/holds 2 elements/);
    // Read (and changed): an aligned copy, and from then on the copy is what goes out.
    expect([...t.data]).toEqual([0.5, 1.5, 2.5]);
    expect(t.data.byteOffset % 4).toBe(0);
    t.data[0] = 9;
    expect(new DataView(t.toBytes().buffer, t.toBytes().byteOffset).getFloat32(0, true)).toBe(9);
    expect(view.getFloat32(1, true)).toBe(0.5); // the received message is left as it was
    expect(t.equals(NdArray.fromList([9, 1.5, 2.5]))).toBe(true);
  });
});
