import type { DataRequest, SingleDocumentRequest } from '@marie/core';
import { DocList, DocValidationError, type TSchema } from '@marie/docs';
import { headerFromProto, headerToProto, jsonOf, routeFromProto, routeToProto } from './convert.js';
import { docFromProto, docListToProto, docsFromProto, docToProto } from './doc-codec.js';
import { readDataRequest } from './fast-reader.js';
import { writeDataRequest } from './fast-writer.js';
import { DocListProto } from './generated/docarray.js';
import type { DataRequestProto, SingleDocumentRequestProto } from './generated/jina.js';
import { StrictReader } from './strict-reader.js';

/** Picks the document type of the endpoint a request names (a handler's `endpointFor`). */
export type SchemaFor = (endpoint: string | undefined) => TSchema | undefined;

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

export function encodeDataRequest(req: DataRequest<any>, schema?: TSchema): Uint8Array {
  return writeDataRequest(dataRequestToProto(req, schema));
}

/** Decodes bytes into a DataRequest; garbage throws a DocValidationError naming what broke. */
export function decodeDataRequest(bytes: Uint8Array): DataRequest {
  try {
    return readDataRequest(bytes);
  } catch (err) {
    if (err instanceof DocValidationError) throw err;
    throw new DocValidationError('request', `not a DataRequestProto (${(err as Error).message})`);
  }
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
