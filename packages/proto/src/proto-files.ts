import { fileURLToPath } from 'node:url';

/** Where the .proto sources ship with this package (for reflection and other languages' codegen). */
export const PROTO_ROOT: string = fileURLToPath(new URL('../protos/', import.meta.url));
export const PROTO_FILES: readonly string[] = [
  'docarray.proto',
  'jina.proto',
  'grpc/health/v1/health.proto',
];
