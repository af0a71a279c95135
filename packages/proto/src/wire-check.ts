import { parseNumpyDtype, tensorElementLimit, typedArrayFor } from '@marie/docs';
import { isTensorTag } from './doc-codec.js';

// An executor reads a request's documents only when its method first uses them (DocList.lazy),
// which must not let bad bytes past the front door: a peer that sends garbage still gets
// INVALID_ARGUMENT at once. This walks a serialized DocListProto as readDocListBytes reads it,
// building nothing: framing and lengths, nesting depth, int32 ranges, and each tensor's type tag,
// dtype and byte count against its shape (its elements are never touched). It is conservative:
// whatever it is not sure readDocListBytes would read without an error answers -1, and the caller
// then reads the bytes the ordinary way, which names what is wrong (or reads what is merely rare).

const MAX_DEPTH = 90; // readDocListBytes refuses past 100
const INT32_MAX = 2 ** 31 - 1;

// One element kind for every message (Buffer), so that the byte loads stay monomorphic.
const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let pos = 0;

/** A varint of at most 5 bytes (tags, lengths, int32 and uint32 values), or -1. */
function varint(end: number): number {
  // One byte (most tags and short lengths): small enough for V8 to inline at every call.
  if (pos < end) {
    const b = buf[pos]!;
    if (b < 0x80) {
      pos++;
      return b;
    }
  }
  return longVarint(end);
}

function longVarint(end: number): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= end) return -1;
    const c = buf[pos++]!;
    value += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return value;
  }
  return -1;
}

/**
 * Whether the bytes at [start, end) spell a string `accept` accepts; the last few answers are
 * kept, as every document of a list carries the same dtype and type tag.
 */
class Memo {
  readonly #seen: { bytes: Uint8Array; answer: number }[] = [];
  constructor(
    readonly max: number,
    readonly accept: (s: string) => number,
  ) {}

  /** `accept`'s answer (-1: refused). */
  ask(start: number, end: number): number {
    const n = end - start;
    if (n > this.max) return -1;
    outer: for (const seen of this.#seen) {
      const b = seen.bytes;
      if (b.length !== n) continue;
      for (let k = 0; k < n; k++) if (b[k] !== buf[start + k]) continue outer;
      return seen.answer;
    }
    let s = '';
    for (let k = start; k < end; k++) {
      const c = buf[k]!;
      if (c >= 0x80) return -1; // the ordinary read decodes UTF-8: let it judge
      s += String.fromCharCode(c);
    }
    const answer = this.accept(s);
    if (this.#seen.length >= 8) this.#seen.shift();
    this.#seen.push({ bytes: buf.slice(start, end), answer });
    return answer;
  }
}

/** Bytes per element of a numpy dtype string, or -1 (non-ASCII bytes spell no dtype either). */
const dtypes = new Memo(8, (s) => {
  const parsed = parseNumpyDtype(s);
  return parsed ? typedArrayFor(parsed.dtype).BYTES_PER_ELEMENT : -1;
});

/** 1 for a tensor's type tag, else -1. */
const tensorTags = new Memo(64, (s) => (isTensorTag(s) ? 1 : -1));

/** Skips a field's value by its wire type (groups and unknown types: not sure, false). */
function skip(tag: number, end: number): boolean {
  switch (tag & 7) {
    case 0:
      for (let k = 0; k < 10; k++) {
        if (pos >= end) return false;
        if (buf[pos++]! < 0x80) return true;
      }
      return false;
    case 1:
      pos += 8;
      return pos <= end;
    case 2: {
      const len = varint(end);
      if (len < 0 || pos + len > end) return false;
      pos += len;
      return true;
    }
    case 5:
      pos += 4;
      return pos <= end;
    default:
      return false;
  }
}

/** The end of a length-delimited value starting here, or -1 when it does not fit in `end`. */
function sub(end: number): number {
  const len = varint(end);
  return len < 0 || pos + len > end ? -1 : pos + len;
}

/** Where the bytes of the last field `field` passed over start. */
let fieldStart = 0;

/** Passes over a length-delimited field (its bytes start at `fieldStart`): its end, or -1. */
function field(end: number): number {
  const fieldEnd = sub(end);
  if (fieldEnd >= 0) {
    fieldStart = pos;
    pos = fieldEnd;
  }
  return fieldEnd;
}

/** A length-delimited field holding a message, walked by `walk` to its end. */
function nested(end: number, walk: (end: number, depth: number) => boolean, depth: number) {
  const subEnd = sub(end);
  return subEnd >= 0 && walk(subEnd, depth);
}

/** A field holding a NodeProto when its tag is `nodeTag`; any other field passed over. */
function nodeOrSkip(tag: number, nodeTag: number, end: number, depth: number): boolean {
  return tag === nodeTag ? nested(end, node, depth) : skip(tag, end);
}

function docList(end: number, depth: number): number {
  let count = 0;
  while (pos < end) {
    const tag = varint(end);
    if (tag < 0) return -1;
    if (tag === 10) {
      if (!nested(end, map, depth + 1)) return -1;
      count++;
    } else if (!skip(tag, end)) return -1;
  }
  return count;
}

const docs = (end: number, depth: number) => docList(end, depth) >= 0;

/** DocProto and DictOfAnyProto: map<string, NodeProto> data = 1 (entries: key = 1, value = 2). */
function map(end: number, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  while (pos < end) {
    const tag = varint(end);
    if (tag < 0) return false;
    if (tag !== 10) {
      if (!skip(tag, end)) return false;
      continue;
    }
    const entryEnd = sub(end);
    if (entryEnd < 0) return false;
    while (pos < entryEnd) {
      const t = varint(entryEnd);
      if (t < 0 || !nodeOrSkip(t, 18, entryEnd, depth + 1)) return false;
    }
  }
  return true;
}

/** ListOfAnyProto: repeated NodeProto data = 1. */
function list(end: number, depth: number): boolean {
  while (pos < end) {
    const tag = varint(end);
    if (tag < 0 || !nodeOrSkip(tag, 10, end, depth + 1)) return false;
  }
  return true;
}

function node(end: number, depth: number): boolean {
  // As readDocListBytes: the last value field wins, and a tensor is checked when it is the value.
  let tensor = false;
  let tensorOk = false;
  let typeStart = -1;
  let typeEnd = -1;
  while (pos < end) {
    const tag = varint(end);
    if (tag < 0) return false;
    switch (tag) {
      case 16: {
        const v = varint(end);
        if (v < 0 || v > INT32_MAX) return false; // negatives are 10 bytes: the ordinary read checks them
        tensor = false;
        break;
      }
      case 50: {
        const ndEnd = sub(end);
        if (ndEnd < 0) return false;
        tensorOk = ndarray(ndEnd);
        pos = ndEnd;
        tensor = true;
        break;
      }
      case 58: // doc
      case 98: // dict
        if (!nested(end, map, depth)) return false;
        tensor = false;
        break;
      case 66: // doc array
        if (!nested(end, docs, depth)) return false;
        tensor = false;
        break;
      case 74: // list
      case 82: // set
      case 90: // tuple
        if (!nested(end, list, depth)) return false;
        tensor = false;
        break;
      case 106: // type
        typeEnd = field(end);
        if (typeEnd < 0) return false;
        typeStart = fieldStart;
        break;
      default:
        if (!skip(tag, end)) return false;
        // text, double, bool, bytes: a plain value replaces a tensor read before it
        if (tag === 10 || tag === 25 || tag === 32 || tag === 42) tensor = false;
    }
  }
  if (!tensor) return true;
  if (!tensorOk) return false;
  return typeStart < 0 || tensorTags.ask(typeStart, typeEnd) === 1;
}

/** NdArrayProto with one DenseNdArrayProto whose dtype is known and whose bytes fit its shape. */
function ndarray(end: number): boolean {
  let dense = 0;
  let bytes = -1;
  let dtypeStart = -1;
  let dtypeEnd = -1;
  let size = 1;
  while (pos < end) {
    const tag = varint(end);
    if (tag < 0) return false;
    if (tag !== 10) {
      if (!skip(tag, end)) return false;
      continue;
    }
    if (++dense > 1) return false;
    const denseEnd = sub(end);
    if (denseEnd < 0) return false;
    while (pos < denseEnd) {
      const t = varint(denseEnd);
      if (t < 0) return false;
      if (t === 10) {
        const bufEnd = field(denseEnd);
        if (bufEnd < 0) return false;
        bytes = bufEnd - fieldStart;
      } else if (t === 16) {
        const d = varint(denseEnd);
        if (d < 0) return false;
        size *= d;
      } else if (t === 18) {
        const packedEnd = sub(denseEnd);
        if (packedEnd < 0) return false;
        while (pos < packedEnd) {
          const d = varint(packedEnd);
          if (d < 0) return false;
          size *= d;
        }
      } else if (t === 26) {
        dtypeEnd = field(denseEnd);
        if (dtypeEnd < 0) return false;
        dtypeStart = fieldStart;
      } else if (!skip(t, denseEnd)) return false;
    }
  }
  if (dense !== 1 || dtypeStart < 0 || size > tensorElementLimit()) return false;
  const width = dtypes.ask(dtypeStart, dtypeEnd);
  return width > 0 && size * width === Math.max(bytes, 0);
}

/**
 * How many documents a serialized DocListProto holds, when readDocListBytes would read it without
 * an error as far as the bytes go (what the documents' schema says is checked when they are
 * read); -1 when that is not certain.
 */
export function readableDocCount(bytes: Uint8Array): number {
  buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  try {
    return docList(bytes.byteLength, 0);
  } finally {
    buf = EMPTY;
  }
}
