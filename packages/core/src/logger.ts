import { AsyncLocalStorage } from 'node:async_hooks';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/** What every log line written while serving a request (or running a job) carries. */
export interface LogContext {
  request_id?: string;
  job_id?: string;
}

const scope = new AsyncLocalStorage<LogContext>();

/**
 * Runs `fn` with `context` added to every log line it writes (and everything it awaits): the
 * request handler, the gateway and the job worker put the request id and job id here.
 */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  const outer = scope.getStore();
  return scope.run(outer ? { ...outer, ...context } : context, fn);
}

/** The request id and job id of the work running now, if any. */
export function currentLogContext(): Readonly<LogContext> | undefined {
  return scope.getStore();
}

/**
 * Request id, job id, and the active OpenTelemetry span's trace and span ids, on every line: a
 * log line and a trace of the same request can be found from each other.
 */
function mixin(): Record<string, string> {
  const out: Record<string, string> = {};
  const context = scope.getStore();
  if (context?.request_id) out.request_id = context.request_id;
  if (context?.job_id) out.job_id = context.job_id;
  const span = trace.getActiveSpan()?.spanContext();
  if (span && isSpanContextValid(span)) {
    out.trace_id = span.traceId;
    out.span_id = span.spanId;
  }
  return out;
}

/**
 * Never written, whatever an object logged holds: credentials and API keys (`Authorization`
 * headers, `apiKey`, passwords in configs).
 */
const REDACT = [
  'authorization',
  'apiKey',
  'api_key',
  'password',
  '*.authorization',
  '*.apiKey',
  '*.api_key',
  '*.password',
  'headers.authorization',
  'req.headers.authorization',
  'metadata.authorization',
];

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export interface LoggingOptions {
  /** `MARIE_LOG_LEVEL` unless given, else `info`. */
  level?: string;
  /**
   * Where lines go; JSON on stderr unless given (stdout stays free for the CLI's `ready` lines).
   * The CLI passes pino-pretty's stream for `--log-format pretty`.
   */
  destination?: DestinationStream;
}

let root: Logger | undefined;

function make(options: LoggingOptions = {}): Logger {
  const level = options.level ?? process.env.MARIE_LOG_LEVEL ?? 'info';
  const config: LoggerOptions = {
    name: 'marie',
    level: LEVELS.has(level) ? level : 'info',
    mixin,
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return pino(config, options.destination ?? pino.destination(2));
}

/** Throws when `level` is not one of pino's levels; names the choices. */
export function checkLogLevel(level: string, what = 'log level'): void {
  if (!LEVELS.has(level))
    throw new TypeError(`${what}: "${level}" is not a log level (${[...LEVELS].join(', ')})`);
}

/**
 * Sets the process-wide logger up: the CLI calls this first thing, before anything makes a
 * logger, from `--log-level` / `--log-format` (or `MARIE_LOG_LEVEL` / `MARIE_LOG_FORMAT`, which
 * the processes it starts inherit).
 */
export function configureLogging(options: LoggingOptions): Logger {
  if (options.level !== undefined) checkLogLevel(options.level);
  root = make(options);
  return root;
}

/**
 * The process-wide logger (pino, JSON lines on stderr so that stdout stays free for the CLI's
 * `ready` lines). The level comes from `MARIE_LOG_LEVEL` (default `info`).
 */
export function rootLogger(): Logger {
  root ??= make();
  return root;
}

/** A child logger for one component (an executor name, a transport). */
export function createLogger(component: string): Logger {
  return rootLogger().child({ component });
}
