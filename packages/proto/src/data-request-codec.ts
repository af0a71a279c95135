import {
  type DataRequest,
  type RequestHeader,
  type Route,
  type SingleDocumentRequest,
  type Status,
  StatusCode,
} from '@marie/core';
import { DocList, DocValidationError, type TSchema } from '@marie/docs';
import { docFromProto, docListToProto, docsFromProto, docToProto } from './doc-codec.js';
import { DocListProto } from './generated/docarray.js';
import {
  DataRequestProto,
  type HeaderProto,
  type RouteProto,
  type SingleDocumentRequestProto,
  type StatusProto,
} from './generated/jina.js';
import { StrictReader } from './strict-reader.js';

/** Picks the document type of the endpoint a request names (a handler's `endpointFor`). */
export type SchemaFor = (endpoint: string | undefined) => TSchema | undefined;

export function statusToProto(status: Status): StatusProto {
  const out: StatusProto = { code: status.code, description: status.description };
  if (status.exception) out.exception = { ...status.exception };
  return out;
}

export function statusFromProto(status: StatusProto): Status {
  const out: Status = {
    code: status.code === StatusCode.ERROR ? StatusCode.ERROR : StatusCode.SUCCESS,
    description: status.description,
  };
  if (status.exception) {
    const { name, args, stacks, executor } = status.exception;
    out.exception = { name, args, stacks, executor };
  }
  return out;
}

export function headerToProto(header: RequestHeader): HeaderProto {
  const out: HeaderProto = { requestId: header.requestId };
  if (header.status) out.status = statusToProto(header.status);
  if (header.execEndpoint !== undefined) out.execEndpoint = header.execEndpoint;
  if (header.targetExecutor !== undefined) out.targetExecutor = header.targetExecutor;
  if (header.timeout !== undefined) out.timeout = header.timeout;
  return out;
}

export function headerFromProto(header: HeaderProto | undefined): RequestHeader {
  const out: RequestHeader = { requestId: header?.requestId ?? '' };
  if (!header) return out;
  if (header.status) out.status = statusFromProto(header.status);
  if (header.execEndpoint !== undefined) out.execEndpoint = header.execEndpoint;
  if (header.targetExecutor !== undefined) out.targetExecutor = header.targetExecutor;
  if (header.timeout !== undefined) out.timeout = header.timeout;
  return out;
}

function routeToProto(route: Route): RouteProto {
  const out: RouteProto = { executor: route.executor };
  if (route.startTime) out.startTime = route.startTime;
  if (route.endTime) out.endTime = route.endTime;
  if (route.status) out.status = statusToProto(route.status);
  return out;
}

function routeFromProto(route: RouteProto): Route {
  const out: Route = { executor: route.executor };
  if (route.startTime) out.startTime = route.startTime;
  if (route.endTime) out.endTime = route.endTime;
  if (route.status) out.status = statusFromProto(route.status);
  return out;
}

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
    parameters: proto.parameters ?? {},
    routes: proto.routes.map(routeFromProto),
    docs: docsFromProto(docs),
  };
}

export function encodeDataRequest(req: DataRequest<any>, schema?: TSchema): Uint8Array {
  return DataRequestProto.encode(dataRequestToProto(req, schema)).finish();
}

/** Decodes bytes into a DataRequest; garbage throws a DocValidationError naming what broke. */
export function decodeDataRequest(bytes: Uint8Array): DataRequest {
  let proto: DataRequestProto;
  try {
    proto = DataRequestProto.decode(new StrictReader(bytes));
  } catch (err) {
    throw new DocValidationError('request', `not a DataRequestProto (${(err as Error).message})`);
  }
  return dataRequestFromProto(proto);
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
