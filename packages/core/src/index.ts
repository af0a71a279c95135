import './metadata.js';

export { type BatchEvent, type BatchOutcome, canonicalJson } from './batcher.js';
export { ConfigError } from './config/config-error.js';
export { freshImporter } from './config/import-module.js';
export {
  executorFromConfig,
  type LoadExecutorOptions,
  loadExecutor,
  parseYaml,
  readYamlFile,
} from './config/load-executor.js';
export {
  registerExecutor,
  registeredExecutors,
  registerLazyExecutor,
} from './config/registry.js';
export {
  envReferences,
  keepEnvReferences,
  type SubstituteOptions,
  substitute as substituteVariables,
  substituteEnvReferences,
} from './config/substitute.js';
export {
  createDataRequest,
  type DataRequest,
  type DataRequestInit,
  errorStatus,
  type RequestHeader,
  type Route,
  type SingleDocumentRequest,
  type Status,
  StatusCode,
  throwIfError,
} from './data-request.js';
export type { Endpoint, EndpointListing, EndpointSchema } from './endpoints.js';
export { ErrorCode, MarieError, type MarieErrorOptions, type RemoteException } from './errors.js';
export {
  Executor,
  type ExecutorArgs,
  type ExecutorClass,
  type ExecutorHealth,
  isExecutorClass,
  type Metas,
  type RuntimeArgs,
} from './executor.js';
export {
  EXIT_FATAL,
  type FaultMarker,
  fallbackFaultDir,
  faultDir,
  findFaultMarkers,
  removeFaultMarker,
  writeFaultMarker,
} from './fault-marker.js';
export { HotReloader, type HotReloaderOptions, type Loaded } from './hot-reload.js';
export {
  type EndpointAnswer,
  type EndpointCall,
  type EndpointInterceptor,
  registerInterceptor,
  useInterceptor,
} from './interceptor.js';
export { lazySignal } from './lazy-signal.js';
export {
  checkLogLevel,
  configureLogging,
  createLogger,
  currentLogContext,
  type LogContext,
  type Logger,
  type LoggingOptions,
  rootLogger,
  withLogContext,
} from './logger.js';
export {
  collectMetricSources,
  type MetricFamily,
  type MetricSample,
  type MetricSource,
  type MetricType,
  registerMetricSource,
} from './metric-source.js';
export { acquirePidLock } from './pid-lock.js';
export {
  backoffDelay,
  type PostOptions,
  type PostResponse,
  retryPolicy,
  splitDocs,
} from './post-options.js';
export type { Processor } from './processor.js';
export { reduceDocs } from './reduce.js';
export {
  createRequestContext,
  type HandleOptions,
  type RequestContext,
} from './request-context.js';
export { logContextOf, RequestHandler, type RequestHandlerOptions } from './request-handler.js';
export {
  type BatchingOptions,
  DEFAULT_ENDPOINT,
  DRY_RUN_ENDPOINT,
  dynamicBatching,
  type RequestsOptions,
  requests,
} from './requests.js';
export {
  ApiKeys,
  checkRequestLimits,
  checkTlsClient,
  DEFAULT_LIMITS,
  resolveLimits,
  type ServerLimits,
  type TlsClientOptions,
  type TlsServerOptions,
  withRequestTimeout,
} from './server-options.js';
export {
  contextFromTraceparent,
  currentTraceparent,
  extractContext,
  failSpan,
  injectContext,
  type Span,
  SpanKind,
  type SpanOptions,
  type TraceContext,
  traced,
  traceServed,
  tracingEnabled,
  withContext,
} from './tracing.js';
