import { BinaryReader } from '@bufbuild/protobuf/wire';

const MIN = -(2n ** 31n);
const MAX = 2n ** 31n - 1n;

/**
 * A reader that refuses int32 values outside the int32 range. The stock reader keeps the low 32
 * bits of a longer varint, so a peer's 2^40 would silently become 0. The only int32 field of the
 * wire protos is NodeProto.integer (spec/wire.md: larger integers travel as float).
 */
export class StrictReader extends BinaryReader {
  override int32(): number {
    const value = BigInt(this.int64());
    if (value < MIN || value > MAX)
      throw new RangeError(`NodeProto.integer: ${value} is outside the int32 range`);
    return Number(value);
  }
}
