// TypeBox is pinned here once; sibling packages and users take it from @marie/docs.
export {
  type Static,
  type TObject,
  type TProperties,
  type TSchema,
  Type,
} from '@sinclair/typebox';
// For sibling packages (@marie/core, @marie/proto): schema introspection and value coercion.
export { coerce, isPlainObject, toBytes, toNdArray } from './coerce.js';
export {
  type AnyDocType,
  type DocInit,
  type DocOf,
  type DocSchema,
  type DocType,
  defineDoc,
  newDocId,
} from './define-doc.js';
export { DocList, type DocListOptions } from './doc-list.js';
export {
  AnyUrl,
  AudioBytes,
  AudioTensor,
  AudioUrl,
  Bytes,
  type BytesTag,
  Dict,
  DOC_LIST_KIND,
  DOC_MARKER,
  Docs,
  Embedding,
  ImageBytes,
  ImageTensor,
  ImageUrl,
  isDocListSchema,
  isDocSchema,
  isTensorSchema,
  Mesh3DUrl,
  PointCloud3DUrl,
  type TDocList,
  TENSOR_KIND,
  Tensor,
  type TensorOptions,
  type TensorTag,
  TextUrl,
  type TTensor,
  type UrlTag,
  VideoBytes,
  VideoTensor,
  VideoUrl,
} from './fields.js';
export { floatToHalf, halfToFloat } from './half.js';
export { type JsonSchema, toJsonSchema } from './json-schema.js';
export {
  DTYPE_NAMES,
  type DType,
  fromNumpyDtype,
  isDType,
  isTypedArray,
  NdArray,
  parseNumpyDtype,
  type TypedArray,
  toNumpyDtype,
  typedArrayFor,
} from './ndarray.js';
export {
  AnyDoc,
  AssetKeyDoc,
  BatchableMarieDoc,
  ImageDoc,
  LegacyDocument,
  MarieDoc,
  OutputDoc,
  StorageDoc,
  TextDoc,
} from './standard-docs.js';
export {
  checkTensorSize,
  setTensorElementLimit,
  tensorElementLimit,
} from './tensor-limit.js';
export type { JsonOptions } from './to-json.js';
export { tensorToJson, toJsonValue } from './to-json.js';
export { DocValidationError } from './validation-error.js';
