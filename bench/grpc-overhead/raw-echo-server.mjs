// The baseline: a raw @grpc/grpc-js unary server on the same method path that hands back the
// request bytes it received, untouched. Prints `ready PORT`.
import { serveRaw } from '../lib/grpc-load.mjs';

serveRaw((bytes) => bytes);
