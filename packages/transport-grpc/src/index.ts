export {
  GrpcClient,
  type GrpcClientOptions,
  type PostOptions,
  parseGrpcAddress,
} from './client.js';
export { fromGrpcError, toGrpcStatus } from './codes.js';
// For sibling packages (the gateway): grpc-js definitions of the wire services with exact paths.
export { asBuffer, grpcDefinition, SERVICES } from './definitions.js';
export { HealthService } from './health.js';
export { DEFAULT_PORT, GrpcServer, type GrpcServerOptions } from './server.js';
