import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The one copy of the wire contract is the repository's protos/; `build` copies it into this
// package's protos/ so that it ships in the tarball. Tests that run the sources before a build
// read the repository's copy.
const shipped = new URL('../protos/', import.meta.url);
const repository = new URL('../../../protos/', import.meta.url);

/** Where the .proto sources are (shipped with this package, for reflection and other languages' codegen). */
export const PROTO_ROOT: string = fileURLToPath(
  existsSync(new URL('jina.proto', shipped)) || !existsSync(new URL('jina.proto', repository))
    ? shipped
    : repository,
);
export const PROTO_FILES: readonly string[] = [
  'docarray.proto',
  'jina.proto',
  'grpc/health/v1/health.proto',
];
