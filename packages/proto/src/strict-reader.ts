import { BinaryReader } from '@bufbuild/protobuf/wire';

const MIN = -(2n ** 31n);
const MAX = 2n ** 31n - 1n;

/**
 * Strings of a message: short ASCII ones (ids, field names, dtypes: most of them) are built
 * directly; the rest go through Buffer's UTF-8 decoder, both faster than TextDecoder per call.
 */
function decodeUtf8(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= 64) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('utf8');
      s += String.fromCharCode(b);
    }
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('utf8');
}

/**
 * The reader of every incoming message. It refuses int32 values outside the int32 range: the stock
 * reader keeps the low 32 bits of a longer varint, so a peer's 2^40 would silently become 0. The
 * only int32 field of the wire protos is NodeProto.integer (spec/wire.md: larger integers travel
 * as float).
 */
export class StrictReader extends BinaryReader {
  constructor(bytes: Uint8Array) {
    super(bytes, decodeUtf8);
  }

  override int32(): number {
    const value = BigInt(this.int64());
    if (value < MIN || value > MAX)
      throw new RangeError(`NodeProto.integer: ${value} is outside the int32 range`);
    return Number(value);
  }
}
