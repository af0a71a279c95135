export { OTLP_GRPC_PORT, startTracing, type Tracing, type TracingOptions } from './tracing.js';
