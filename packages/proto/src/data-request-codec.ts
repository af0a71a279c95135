import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { DataRequest, DocsReader, SingleDocumentRequest } from '@marie/core';
import { DocList, DocValidationError, type TSchema } from '@marie/docs';
import { headerFromProto, headerToProto, jsonOf, routeFromProto, routeToProto } from './convert.js';
import { docFromProto, docListToProto, docsFromProto, docToProto } from './doc-codec.js';
import { readDataRequest, readDocListBytes } from './fast-reader.js';
import { writeDataRequest } from './fast-writer.js';
import { DocListProto } from './generated/docarray.js';
import type { DataRequestProto, SingleDocumentRequestProto } from './generated/jina.js';
import { StrictReader } from './strict-reader.js';
import { readableDocCount } from './wire-check.js';

/** A DataRequest as its protobuf message; documents always go as `data.docs`. */
export function dataRequestToProto(req: DataRequest<any>, schema?: TSchema): DataRequestProto {
  return {
    header: headerToProto(req.header),
    parameters: req.parameters,
    routes: req.routes.map(routeToProto),
    data: { docs: docListToProto(req.docs as object[], schema) },
  };
}

/**
 * A DataRequest from its protobuf message. Documents come as plain objects by wire type; the
 * handler validates them against the endpoint's schema. `data.docs_bytes` is read too.
 */
export function dataRequestFromProto(proto: DataRequestProto): DataRequest {
  let docs: DocListProto | undefined = proto.data?.docs;
  if (!docs && proto.data?.docsBytes) {
    try {
      docs = DocListProto.decode(new StrictReader(proto.data.docsBytes));
    } catch (err) {
      throw new DocValidationError(
        'data.docs_bytes',
        `not a serialized DocListProto (${(err as Error).message})`,
      );
    }
  }
  return {
    header: headerFromProto(proto.header),
    parameters: jsonOf(proto.parameters ?? {}) as Record<string, unknown>,
    routes: proto.routes.map(routeFromProto),
    docs: docsFromProto(docs),
  };
}

/**
 * A request read with `docsBytes`, and the bytes it came from. A gateway never changes such a
 * request in place (it builds new objects), so passing the same object on means passing the same
 * bytes on: a hop forwards what it received without encoding it again. The bytes are a private
 * field (no WeakMap: its entries cost every GC), which a copy (`{ ...req }`) does not carry.
 */
class ReceivedRequest implements DataRequest {
  header: DataRequest['header'];
  parameters: DataRequest['parameters'];
  routes: DataRequest['routes'];
  docs: DataRequest['docs'];
  declare docsBytes?: Uint8Array;
  readonly #bytes: Uint8Array;

  constructor(req: DataRequest, bytes: Uint8Array) {
    this.header = req.header;
    this.parameters = req.parameters;
    this.routes = req.routes;
    this.docs = req.docs;
    if (req.docsBytes !== undefined) this.docsBytes = req.docsBytes;
    this.#bytes = bytes;
  }

  /** The bytes `req` was read from, if it is one read with `docsBytes` and not a copy. */
  static bytesOf(req: object): Uint8Array | undefined {
    return #bytes in req ? (req as ReceivedRequest).#bytes : undefined;
  }
}

/**
 * Encodes a DataRequest; documents still serialized (`docsBytes`) are written as they are.
 * `alloc` lends the output buffer (see writeDataRequest).
 */
export function encodeDataRequest(
  req: DataRequest<any>,
  schema?: TSchema,
  alloc?: (size: number) => Buffer,
): Uint8Array {
  const same = ReceivedRequest.bytesOf(req);
  if (same !== undefined) return same;
  // Documents a method never read (DocList.lazy) go back as the bytes they came in.
  const unread = DocList.unreadSource(req.docs);
  const docsBytes = req.docsBytes ?? (unread instanceof Uint8Array ? unread : undefined);
  if (docsBytes === undefined)
    return writeDataRequest(dataRequestToProto(req, schema), undefined, alloc);
  const { docsBytes: _, ...rest } = req;
  return writeDataRequest(
    { ...dataRequestToProto({ ...rest, docs: [] }), data: undefined },
    docsBytes,
    alloc,
  );
}

/**
 * Decodes bytes into a DataRequest; garbage throws a DocValidationError naming what broke. With
 * `docsBytes`, the documents are left serialized (see DataRequest.docsBytes), for a gateway.
 */
export function decodeDataRequest(
  bytes: Uint8Array,
  options: { docsBytes?: boolean } = {},
): DataRequest {
  try {
    const req = readDataRequest(bytes, options);
    return options.docsBytes ? new ReceivedRequest(req, bytes) : req;
  } catch (err) {
    if (err instanceof DocValidationError) throw err;
    throw new DocValidationError('request', `not a DataRequestProto (${(err as Error).message})`);
  }
}

/** Serialized documents (a DocListProto) as plain values; malformed bytes throw a DocValidationError. */
function readDocs(bytes: Uint8Array): Record<string, unknown>[] {
  try {
    return readDocListBytes(bytes);
  } catch (err) {
    if (err instanceof DocValidationError) throw err;
    throw new DocValidationError(
      'docs',
      `not a serialized DocListProto (${(err as Error).message})`,
    );
  }
}

/** A request with its documents read, if they were still serialized. */
export function withDocsRead<R extends DataRequest<any>>(req: R): R {
  if (req.docsBytes === undefined) return req;
  const { docsBytes, ...rest } = req;
  return { ...rest, docs: readDocs(docsBytes) } as unknown as R;
}

/**
 * How transports hand an executor's handler the documents they left serialized (HandleOptions'
 * `docsReader`): read when its method first uses them, counted without reading.
 */
export const docsReader: DocsReader = { read: readDocs, count: countDocListBytes };

/**
 * A request as a server decoded it, checked at the front door, and how many documents it holds
 * (for the server's limits). Documents it left serialized (`docsBytes`) stay so when their bytes
 * would read without an error (readableDocCount), and are read now otherwise, which throws the
 * DocValidationError that names what is wrong.
 */
export function checkDocsBytes(req: DataRequest): { req: DataRequest; count: number } {
  if (req.docsBytes === undefined) return { req, count: req.docs.length };
  const count = readableDocCount(req.docsBytes);
  if (count >= 0) return { req, count };
  const read = withDocsRead(req);
  return { req: read, count: read.docs.length };
}

export function singleDocRequestToProto(
  req: SingleDocumentRequest<any>,
  schema?: TSchema,
): SingleDocumentRequestProto {
  const doc = req.document as object;
  const type = schema ?? (doc instanceof DocList ? doc.docType : undefined);
  return {
    header: headerToProto(req.header),
    parameters: req.parameters,
    routes: req.routes.map(routeToProto),
    document: type ? docToProto(doc, type) : docListToProto([doc]).docs[0]!,
  };
}

export function singleDocRequestFromProto(
  proto: SingleDocumentRequestProto,
): SingleDocumentRequest {
  return {
    header: headerFromProto(proto.header),
    parameters: proto.parameters ?? {},
    routes: proto.routes.map(routeFromProto),
    document: proto.document ? docFromProto(proto.document, 'document') : {},
  };
}

/**
 * How many documents a serialized DocListProto holds, by its top-level fields alone (nothing is
 * decoded): a gateway checks its documents-per-request limit on bytes it forwards unread.
 * Malformed bytes count what was readable; the executor that decodes them refuses them.
 */
export function countDocListBytes(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  let n = 0;
  try {
    while (r.pos < r.len) {
      const [field, type] = r.tag();
      if (field === 1) n++;
      r.skip(type);
    }
  } catch {
    // counted what could be read
  }
  return n;
}
