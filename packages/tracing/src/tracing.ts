import { createLogger, type Logger } from '@marie/core';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/** OTLP's gRPC port, where Jina's `--traces-exporter-port` points by default. */
export const OTLP_GRPC_PORT = 4317;

export interface TracingOptions {
  /** `service.name` of every span this process exports: the executor's or gateway's name. */
  serviceName: string;
  /** The OTLP collector (Jina's `--traces-exporter-host`): `localhost` unless given. */
  host?: string;
  /** Its OTLP/gRPC port (Jina's `--traces-exporter-port`): 4317 unless given. */
  port?: number;
  /** Exports over TLS (a collector behind `https`), with the system's roots. */
  tls?: boolean;
  /** How often finished spans are sent, in milliseconds: 1000 unless given. */
  exportIntervalMs?: number;
  /** Where spans go instead of OTLP (tests, a console exporter). */
  exporter?: SpanExporter;
  logger?: Logger;
}

export interface Tracing {
  /** Sends the spans not yet exported, then stops (call before the process exits). */
  shutdown(): Promise<void>;
  /** Sends the spans not yet exported. */
  flush(): Promise<void>;
}

let active: Tracing | undefined;

/**
 * Records this process's spans and exports them over OTLP/gRPC (as Jina's `--tracing` does):
 * registers a tracer provider, the AsyncLocalStorage context manager and the W3C trace-context
 * propagator globally, so that the spans @marie/core, the transports, the gateway, storage and
 * events open (through OpenTelemetry's API) are recorded, and `traceparent` travels in gRPC
 * metadata and HTTP headers. Once per process; a second call returns the first.
 */
export function startTracing(options: TracingOptions): Tracing {
  if (active) return active;
  const logger = options.logger ?? createLogger('tracing');
  const host = options.host ?? 'localhost';
  const port = options.port ?? OTLP_GRPC_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new TypeError(`traces exporter port: ${port} is not a port (1-65535)`);
  // The SDK's own warnings (an unreachable collector) through our logger, never thrown.
  diag.setLogger(
    {
      error: (m, ...a) => logger.warn({ detail: a }, `opentelemetry: ${m}`),
      warn: (m, ...a) => logger.warn({ detail: a }, `opentelemetry: ${m}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
  const exporter =
    options.exporter ??
    new OTLPTraceExporter({ url: `${options.tls ? 'https' : 'http'}://${host}:${port}` });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'service.namespace': 'marie',
      'process.pid': process.pid,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
    }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: options.exportIntervalMs ?? 1000,
      }),
    ],
  });
  provider.register();
  logger.debug({ host, port, service: options.serviceName }, 'tracing to OTLP');
  let stopped: Promise<void> | undefined;
  active = {
    shutdown: () => {
      stopped ??= provider.shutdown().catch((err: unknown) => {
        logger.warn({ err }, 'spans could not be exported at shutdown');
      });
      return stopped;
    },
    flush: () => provider.forceFlush(),
  };
  return active;
}
