import type { BinaryReader } from '@bufbuild/protobuf/wire';
import type { DataRequest } from '@marie/core';
import { DocValidationError } from '@marie/docs';
import { headerFromProto, jsonOf, routeFromProto } from './convert.js';
import { tensorFromDense } from './doc-codec.js';
import { Struct } from './generated/google/protobuf/struct.js';
import { HeaderProto, RouteProto } from './generated/jina.js';
import { StrictReader } from './strict-reader.js';

// The hot path in: DataRequestProto bytes straight to plain documents, without first building the
// generated NodeProto objects (docFromProto's input). Same results as decode + dataRequestFromProto.

const MAX_DEPTH = 100;

function view(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readDocList(
  r: BinaryReader,
  end: number,
  path: string,
  depth: number,
): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const len = r.uint32();
      docs.push(readMap(r, r.pos + len, `${path}[${docs.length}]`, depth + 1));
    } else r.skip(tag & 7);
  }
  return docs;
}

/** DocProto and DictOfAnyProto: map<string, NodeProto> data = 1. */
function readMap(
  r: BinaryReader,
  end: number,
  path: string,
  depth: number,
  empty?: null,
): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw new DocValidationError(path, 'documents nested too deep');
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== 10) {
      r.skip(tag & 7);
      continue;
    }
    const entryEnd = r.uint32() + r.pos;
    let key = '';
    let value: unknown;
    while (r.pos < entryEnd) {
      const t = r.uint32();
      if (t === 10) key = r.string();
      else if (t === 18) {
        const len = r.uint32();
        value = readNode(r, r.pos + len, key === '' ? path : `${path}.${key}`, depth + 1);
      } else r.skip(t & 7);
    }
    // A document leaves out empty (None) fields; a dict keeps them as null, as docarray does.
    if (value !== undefined) out[key] = value;
    else if (empty === null) out[key] = null;
  }
  return out;
}

function readList(r: BinaryReader, end: number, path: string, depth: number): unknown[] {
  const out: unknown[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      const len = r.uint32();
      out.push(readNode(r, r.pos + len, `${path}[${out.length}]`, depth + 1) ?? null);
    } else r.skip(tag & 7);
  }
  return out;
}

function readNode(r: BinaryReader, end: number, path: string, depth: number): unknown {
  let value: unknown;
  let tensor: { buffer?: Uint8Array; shape: number[]; dtype: string } | undefined;
  let type: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        value = r.string();
        break;
      case 16:
        try {
          value = r.int32();
        } catch (err) {
          // StrictReader's int32 range check: name the field it was found in.
          throw new DocValidationError(path, (err as Error).message);
        }
        break;
      case 25:
        value = r.double();
        break;
      case 32:
        value = r.bool();
        break;
      case 42:
        value = view(r.bytes());
        break;
      case 50: {
        const ndEnd = r.uint32() + r.pos;
        tensor = { shape: [], dtype: '' };
        while (r.pos < ndEnd) {
          const t = r.uint32();
          if (t !== 10) {
            r.skip(t & 7);
            continue;
          }
          const denseEnd = r.uint32() + r.pos;
          while (r.pos < denseEnd) {
            const d = r.uint32();
            if (d === 10) tensor.buffer = r.bytes();
            else if (d === 16) tensor.shape.push(r.uint32());
            else if (d === 18) {
              const packedEnd = r.uint32() + r.pos;
              while (r.pos < packedEnd) tensor.shape.push(r.uint32());
            } else if (d === 26) tensor.dtype = r.string();
            else r.skip(d & 7);
          }
        }
        value = tensor;
        break;
      }
      case 58: {
        const len = r.uint32();
        value = readMap(r, r.pos + len, path, depth);
        break;
      }
      case 66: {
        const len = r.uint32();
        value = readDocList(r, r.pos + len, path, depth);
        break;
      }
      case 74:
      case 82:
      case 90: {
        const len = r.uint32();
        value = readList(r, r.pos + len, path, depth);
        break;
      }
      case 98: {
        const len = r.uint32();
        value = readMap(r, r.pos + len, path, depth, null);
        break;
      }
      case 106:
        type = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  if (tensor !== undefined && value === tensor) return tensorFromDense(tensor, type, path);
  return value;
}

/** Reads a serialized DocListProto into plain documents. */
export function readDocListBytes(bytes: Uint8Array, path = 'docs'): Record<string, unknown>[] {
  const r = new StrictReader(bytes);
  return readDocList(r, bytes.byteLength, path, 0);
}

/**
 * Reads DataRequestProto bytes into a DataRequest; throws DocValidationError or the reader's error.
 * With `docsBytes`, the documents stay serialized in `docsBytes` (a view of `bytes`), unread.
 */
export function readDataRequest(
  bytes: Uint8Array,
  options: { docsBytes?: boolean } = {},
): DataRequest {
  const r = new StrictReader(bytes);
  const out: DataRequest = {
    header: headerFromProto(undefined),
    parameters: {},
    routes: [],
    docs: [],
  };
  while (r.pos < bytes.byteLength) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        out.header = headerFromProto(HeaderProto.decode(r, r.uint32()));
        break;
      case 18:
        out.parameters = jsonOf(Struct.unwrap(Struct.decode(r, r.uint32()))) as Record<
          string,
          unknown
        >;
        break;
      case 26:
        out.routes.push(routeFromProto(RouteProto.decode(r, r.uint32())));
        break;
      case 34: {
        const dataEnd = r.uint32() + r.pos;
        while (r.pos < dataEnd) {
          const t = r.uint32();
          if ((t === 10 || t === 18) && options.docsBytes) {
            // docs (a DocListProto) and docs_bytes (the same, serialized) carry the same bytes.
            out.docsBytes = r.bytes();
            out.docs = [];
          } else if (t === 10) {
            const len = r.uint32();
            out.docs = readDocList(r, r.pos + len, 'docs', 0);
          } else if (t === 18) {
            const inner = r.bytes();
            try {
              out.docs = readDocListBytes(inner);
            } catch (err) {
              if (err instanceof DocValidationError) throw err;
              throw new DocValidationError(
                'data.docs_bytes',
                `not a serialized DocListProto (${(err as Error).message})`,
              );
            }
          } else r.skip(t & 7);
        }
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}
