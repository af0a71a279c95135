// The wire messages (ts-proto) and the codec between them and @marie/core's DataRequest.
export {
  headerFromProto,
  headerToProto,
  routeFromProto,
  routeToProto,
  statusFromProto,
  statusToProto,
} from './convert.js';
export {
  checkDocsBytes,
  countDocListBytes,
  dataRequestFromProto,
  dataRequestToProto,
  decodeDataRequest,
  docsReader,
  encodeDataRequest,
  singleDocRequestFromProto,
  singleDocRequestToProto,
  withDocsRead,
} from './data-request-codec.js';
export { docFromProto, docListToProto, docsFromProto, docToProto, encodeAny } from './doc-codec.js';
export { readDataRequest, readDocListBytes } from './fast-reader.js';
export { writeDataRequest } from './fast-writer.js';
export * as docarray from './generated/docarray.js';
export * as health from './generated/grpc/health/v1/health.js';
export * as jina from './generated/jina.js';
export { PROTO_FILES, PROTO_ROOT } from './proto-files.js';
export { StrictReader } from './strict-reader.js';
export { readableDocCount } from './wire-check.js';
