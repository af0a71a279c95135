import './metadata.js';

// ---------------------------------------------------------------------------------------------
// What users import: write an executor, load it from YAML, call it, handle its errors.
// ---------------------------------------------------------------------------------------------

export { ConfigError } from './config/config-error.js';
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
  createDataRequest,
  type DataRequest,
  type DataRequestInit,
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
export { EXIT_FATAL } from './fault-marker.js';
export {
  type EndpointAnswer,
  type EndpointCall,
  type EndpointInterceptor,
  registerInterceptor,
  useInterceptor,
} from './interceptor.js';
export {
  configureLogging,
  createLogger,
  type LogContext,
  type Logger,
  type LoggingOptions,
} from './logger.js';
export type { PostOptions, PostResponse } from './post-options.js';
export {
  createRequestContext,
  type DocsReader,
  type HandleOptions,
  type RequestContext,
} from './request-context.js';
export { RequestHandler, type RequestHandlerOptions } from './request-handler.js';
export {
  type BatchingOptions,
  DEFAULT_ENDPOINT,
  DRY_RUN_ENDPOINT,
  dynamicBatching,
  type RequestsOptions,
  requests,
} from './requests.js';

// ---------------------------------------------------------------------------------------------
// What sibling packages import: the seams of serving, routing, operating and supervising (the
// transports, flow, client, storage, events, gpu, metrics, tracing, cli). Stable for them, not a
// promise to users.
// ---------------------------------------------------------------------------------------------

// Serving: what every transport serves and enforces.

export { type BatchEvent, type BatchOutcome, canonicalJson } from './batcher.js';
export { freshImporter } from './config/import-module.js';
export { errorStatus } from './data-request.js';
export { HotReloader, type HotReloaderOptions, type Loaded } from './hot-reload.js';
export { lazySignal, NEVER_ABORTED } from './lazy-signal.js';
export { DelegatingProcessor, type Processor } from './processor.js';
export { reduceDocs } from './reduce.js';
export { logContextOf } from './request-handler.js';
export {
  ApiKeys,
  checkRequestLimits,
  checkTlsClient,
  DEFAULT_LIMITS,
  LIMITS,
  type LimitInfo,
  resolveLimits,
  type ServerLimits,
  type TlsClientOptions,
  type TlsServerOptions,
  withRequestTimeout,
} from './server-options.js';

// Clients: retries and request splitting.

export { backoffDelay, postRequests, retryPolicy, splitDocs } from './post-options.js';

// Configuration: `${{ ENV.X }}` and `${{ VAR }}` substitution (Flows, exports, CLI flags).

export {
  envReferences,
  keepEnvReferences,
  type SubstituteOptions,
  substitute as substituteVariables,
  substituteEnvReferences,
} from './config/substitute.js';

// Operating: fault markers, logs, metric sources, single-instance locks, traces.

export { ConnectionStats, type CutReason } from './connection-stats.js';
export {
  type FaultMarker,
  fallbackFaultDir,
  faultDir,
  findFaultMarkers,
  removeFaultMarker,
  writeFaultMarker,
} from './fault-marker.js';
export { checkLogLevel, currentLogContext, rootLogger, withLogContext } from './logger.js';
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
