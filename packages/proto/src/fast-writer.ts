import type { DenseNdArrayProto, DocListProto, DocProto, NodeProto } from './generated/docarray.js';
import type { DataRequestProto, HeaderProto, RouteProto, StatusProto } from './generated/jina.js';

// A protobuf writer for the hot path (DataRequestProto out of every server and client). The stock
// writer copies a nested message's bytes once per level it is nested in (fork/join), and a tensor
// sits 8 levels deep. This one walks the message twice, as Go's Size()/MarshalTo() do: the first
// pass only adds up sizes and records each nested message's length (in fork order), the second
// writes straight into one buffer of the exact size. Nothing is recorded per field, so a request
// with thousands of fields allocates its output buffer and one small array of lengths. Output is
// byte-for-byte what the generated encoder writes.

/** UTF-8 length; short ASCII strings (ids, keys, dtypes) are counted without a native call. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return n;
}

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

function bigVarintSize(v: bigint): number {
  let size = 1;
  for (let x = v >> 7n; x > 0n; x >>= 7n) size++;
  return size;
}

const EMPTY = Buffer.alloc(0);

class Writer {
  /** First pass: count. Second pass: write. */
  measuring = true;
  /** Bytes counted (first pass) or written (second pass). */
  pos = 0;
  out: Buffer = EMPTY;
  /** Each nested message's length, in the order the messages were started. */
  readonly #lengths: number[] = [];
  /** First pass: [index into #lengths, pos at the start] per open message. */
  readonly #open: number[] = [];
  #next = 0;

  /** Switches to writing: one allocation of the exact size (or a buffer `alloc` lends). */
  emit(alloc: (size: number) => Buffer = Buffer.allocUnsafe): void {
    this.out = alloc(this.pos);
    this.measuring = false;
    this.pos = 0;
    this.#next = 0;
  }

  uint32(n: number): this {
    let v = n >>> 0;
    if (this.measuring) {
      this.pos += varintSize(v);
      return this;
    }
    const out = this.out;
    while (v > 0x7f) {
      out[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[this.pos++] = v;
    return this;
  }

  tag(field: number, wire: number): this {
    return this.uint32((field << 3) | wire);
  }

  int32(n: number): this {
    return n >= 0 ? this.uint32(n) : this.int64(n);
  }

  int64(n: number): this {
    if (n >= 0 && n <= 0xffffffff) return this.uint32(n);
    // Negative numbers and numbers past 32 bits: 64-bit two's complement varint.
    let v = BigInt.asUintN(64, BigInt(Math.trunc(n)));
    const size = bigVarintSize(v);
    if (this.measuring) {
      this.pos += size;
      return this;
    }
    for (let k = 1; k < size; k++) {
      this.out[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.out[this.pos++] = Number(v);
    return this;
  }

  bool(b: boolean): this {
    return this.uint32(b ? 1 : 0);
  }

  double(n: number): this {
    if (!this.measuring) this.out.writeDoubleLE(n, this.pos);
    this.pos += 8;
    return this;
  }

  string(s: string): this {
    const size = utf8Length(s);
    this.uint32(size);
    if (!this.measuring) {
      const out = this.out;
      if (size !== s.length) out.write(s, this.pos, size, 'utf8');
      else if (size > 64) out.write(s, this.pos, size, 'latin1');
      else for (let k = 0; k < size; k++) out[this.pos + k] = s.charCodeAt(k);
    }
    this.pos += size;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.uint32(b.byteLength);
    if (!this.measuring) this.out.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }

  /** Starts a length-delimited message: its length is counted by `join`, written in pass two. */
  fork(): this {
    if (this.measuring) {
      this.#open.push(this.#lengths.length, this.pos);
      this.#lengths.push(0);
      return this;
    }
    return this.uint32(this.#lengths[this.#next++]!);
  }

  join(): this {
    if (!this.measuring) return this;
    const start = this.#open.pop()!;
    const at = this.#open.pop()!;
    const length = this.pos - start;
    this.#lengths[at] = length;
    this.pos += varintSize(length);
    return this;
  }
}

/** Runs `write` once to measure and once to emit; returns the bytes. */
function twoPass(write: (w: Writer) => void, alloc?: (size: number) => Buffer): Uint8Array {
  const w = new Writer();
  write(w);
  w.emit(alloc);
  write(w);
  return w.out;
}

// --- google.protobuf.Struct / Value / ListValue (parameters, endpoint schemas) ---

function writeValue(w: Writer, v: unknown): void {
  // `undefined` inside a list has no Value kind: it travels as null, as JSON would write it.
  if (v === null || v === undefined) w.tag(1, 0).uint32(0);
  else if (typeof v === 'boolean') w.tag(4, 0).bool(v);
  else if (typeof v === 'number') w.tag(2, 1).double(v);
  else if (typeof v === 'string') w.tag(3, 2).string(v);
  else if (Array.isArray(v)) {
    w.tag(6, 2).fork();
    for (const item of v) {
      w.tag(1, 2).fork();
      writeValue(w, item);
      w.join();
    }
    w.join();
  } else if (typeof v === 'object') {
    w.tag(5, 2).fork();
    writeStruct(w, v as Record<string, unknown>);
    w.join();
  } else throw new Error(`Unsupported any value type: ${typeof v}`);
}

function writeStruct(w: Writer, obj: Record<string, unknown>): void {
  for (const key of Object.keys(obj)) {
    w.tag(1, 2).fork();
    if (key !== '') w.tag(1, 2).string(key);
    if (obj[key] !== undefined) {
      w.tag(2, 2).fork();
      writeValue(w, obj[key]);
      w.join();
    }
    w.join();
  }
}

// --- docarray ---

function writeDense(w: Writer, d: DenseNdArrayProto): void {
  if (d.buffer.length !== 0) w.tag(1, 2).bytes(d.buffer);
  if (d.shape.length !== 0) {
    w.tag(2, 2).fork();
    for (const s of d.shape) w.uint32(s);
    w.join();
  }
  if (d.dtype !== '') w.tag(3, 2).string(d.dtype);
}

function writeNode(w: Writer, n: NodeProto): void {
  if (n.text !== undefined) w.tag(1, 2).string(n.text);
  if (n.integer !== undefined) w.tag(2, 0).int32(n.integer);
  if (n.float !== undefined) w.tag(3, 1).double(n.float);
  if (n.boolean !== undefined) w.tag(4, 0).bool(n.boolean);
  if (n.blob !== undefined) w.tag(5, 2).bytes(n.blob);
  if (n.ndarray !== undefined) {
    w.tag(6, 2).fork();
    if (n.ndarray.dense !== undefined) {
      w.tag(1, 2).fork();
      writeDense(w, n.ndarray.dense);
      w.join();
    }
    if (n.ndarray.parameters !== undefined) {
      w.tag(2, 2).fork();
      writeStruct(w, n.ndarray.parameters);
      w.join();
    }
    w.join();
  }
  if (n.doc !== undefined) {
    w.tag(7, 2).fork();
    writeDoc(w, n.doc);
    w.join();
  }
  if (n.docArray !== undefined) {
    w.tag(8, 2).fork();
    writeDocList(w, n.docArray);
    w.join();
  }
  if (n.list !== undefined) writeNodeList(w, 9, n.list.data);
  if (n.set !== undefined) writeNodeList(w, 10, n.set.data);
  if (n.tuple !== undefined) writeNodeList(w, 11, n.tuple.data);
  if (n.dict !== undefined) {
    w.tag(12, 2).fork();
    writeNodeMap(w, n.dict.data);
    w.join();
  }
  if (n.type !== undefined) w.tag(13, 2).string(n.type);
}

function writeNodeList(w: Writer, field: number, items: readonly NodeProto[]): void {
  w.tag(field, 2).fork();
  for (const item of items) {
    w.tag(1, 2).fork();
    writeNode(w, item);
    w.join();
  }
  w.join();
}

function writeNodeMap(w: Writer, data: Record<string, NodeProto>): void {
  for (const key of Object.keys(data)) {
    w.tag(1, 2).fork();
    if (key !== '') w.tag(1, 2).string(key);
    w.tag(2, 2).fork();
    writeNode(w, data[key]!);
    w.join();
    w.join();
  }
}

function writeDoc(w: Writer, doc: DocProto): void {
  writeNodeMap(w, doc.data);
}

function writeDocList(w: Writer, list: DocListProto): void {
  for (const doc of list.docs) {
    w.tag(1, 2).fork();
    writeDoc(w, doc);
    w.join();
  }
}

// --- jina ---

function writeStatus(w: Writer, s: StatusProto): void {
  if (s.code !== 0) w.tag(1, 0).int32(s.code);
  if (s.description !== '') w.tag(2, 2).string(s.description);
  if (s.exception !== undefined) {
    const e = s.exception;
    w.tag(3, 2).fork();
    if (e.name !== '') w.tag(1, 2).string(e.name);
    for (const a of e.args) w.tag(2, 2).string(a);
    for (const l of e.stacks) w.tag(3, 2).string(l);
    if (e.executor !== '') w.tag(4, 2).string(e.executor);
    w.join();
  }
}

function writeHeader(w: Writer, h: HeaderProto): void {
  if (h.requestId !== '') w.tag(1, 2).string(h.requestId);
  if (h.status !== undefined) {
    w.tag(2, 2).fork();
    writeStatus(w, h.status);
    w.join();
  }
  if (h.execEndpoint !== undefined) w.tag(3, 2).string(h.execEndpoint);
  if (h.targetExecutor !== undefined) w.tag(4, 2).string(h.targetExecutor);
  if (h.timeout !== undefined) w.tag(5, 0).uint32(h.timeout);
}

function writeTimestamp(w: Writer, field: number, date: Date): void {
  const ms = date.getTime();
  const seconds = Math.trunc(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  w.tag(field, 2).fork();
  if (seconds !== 0) w.tag(1, 0).int64(seconds);
  if (nanos !== 0) w.tag(2, 0).int32(nanos);
  w.join();
}

function writeRoute(w: Writer, r: RouteProto): void {
  if (r.executor !== '') w.tag(1, 2).string(r.executor);
  if (r.startTime !== undefined) writeTimestamp(w, 2, r.startTime);
  if (r.endTime !== undefined) writeTimestamp(w, 3, r.endTime);
  if (r.status !== undefined) {
    w.tag(4, 2).fork();
    writeStatus(w, r.status);
    w.join();
  }
}

/**
 * Encodes a DataRequestProto as the generated encoder does, in one allocation. `docsBytes` (a
 * serialized DocListProto) is written verbatim as `data.docs`, in place of `m.data`. `alloc`
 * lends the output buffer (exactly `size` bytes long): a caller that copies the bytes away at
 * once can lend the same one every time.
 */
export function writeDataRequest(
  m: DataRequestProto,
  docsBytes?: Uint8Array,
  alloc?: (size: number) => Buffer,
): Uint8Array {
  return twoPass((w) => writeRequest(w, m, docsBytes), alloc);
}

function writeRequest(w: Writer, m: DataRequestProto, docsBytes?: Uint8Array): void {
  if (m.header !== undefined) {
    w.tag(1, 2).fork();
    writeHeader(w, m.header);
    w.join();
  }
  if (m.parameters !== undefined) {
    w.tag(2, 2).fork();
    writeStruct(w, m.parameters);
    w.join();
  }
  for (const r of m.routes) {
    w.tag(3, 2).fork();
    writeRoute(w, r);
    w.join();
  }
  if (docsBytes !== undefined) {
    w.tag(4, 2).fork();
    w.tag(1, 2).bytes(docsBytes);
    w.join();
  } else if (m.data !== undefined) {
    w.tag(4, 2).fork();
    if (m.data.docs !== undefined) {
      w.tag(1, 2).fork();
      writeDocList(w, m.data.docs);
      w.join();
    }
    if (m.data.docsBytes !== undefined) w.tag(2, 2).bytes(m.data.docsBytes);
    w.join();
  }
}
