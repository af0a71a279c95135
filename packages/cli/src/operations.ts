import type { Metrics } from '@marie/metrics';
import type { Tracing } from '@marie/tracing';
import type { Command } from 'commander';
import { integer } from './parse.js';

/** Jina's monitoring and tracing flags, as every serving command takes them. */
export interface OperationsFlags {
  monitoring?: boolean;
  portMonitoring?: number;
  tracing?: boolean;
  tracesExporterHost?: string;
  tracesExporterPort?: number;
}

/** Adds `--monitoring`, `--port-monitoring`, `--tracing`, `--traces-exporter-host|port`. */
export function addOperationsOptions(command: Command): Command {
  return command
    .option('--monitoring', "Prometheus metrics (Jina's names) on --port-monitoring")
    .option(
      '--port-monitoring <port>',
      'port of GET /metrics with --monitoring (0 picks a free one)',
      integer('--port-monitoring', 0),
    )
    .option('--tracing', 'OpenTelemetry traces, exported over OTLP/gRPC')
    .option('--traces-exporter-host <host>', 'the OTLP collector with --tracing (localhost)')
    .option(
      '--traces-exporter-port <port>',
      'its OTLP/gRPC port with --tracing (4317)',
      integer('--traces-exporter-port', 1),
    );
}

export interface Operations {
  metrics?: Metrics;
  tracing?: Tracing;
  /** Serves `GET /metrics` (with --monitoring) and prints `monitoring URL [label]`. */
  serveMetrics(host: string, label?: string): Promise<void>;
  /** Closes /metrics and sends the last spans. */
  close(): Promise<void>;
}

/**
 * Starts tracing (first, so that every span of the process is recorded) and makes the metrics of
 * one runtime; `serveMetrics` opens their port once the runtime serves. Tracing and metrics are
 * loaded only when asked for (OpenTelemetry and prom-client are megabytes of heap that every
 * major GC of a serving process would walk).
 */
export async function startOperations(
  flags: OperationsFlags,
  runtimeName: string,
): Promise<Operations> {
  const tracing = flags.tracing
    ? (await import('@marie/tracing')).startTracing({
        serviceName: runtimeName,
        ...(flags.tracesExporterHost ? { host: flags.tracesExporterHost } : {}),
        ...(flags.tracesExporterPort ? { port: flags.tracesExporterPort } : {}),
      })
    : undefined;
  const metrics = flags.monitoring
    ? new (await import('@marie/metrics')).Metrics({ runtimeName })
    : undefined;
  let server: { port: number; close: () => Promise<void> } | undefined;
  return {
    ...(metrics ? { metrics } : {}),
    ...(tracing ? { tracing } : {}),
    async serveMetrics(host, label) {
      if (!metrics) return;
      server = await metrics.serve({ host, port: flags.portMonitoring ?? 0 });
      process.stdout.write(
        `monitoring http://${host}:${server.port}/metrics${label ? ` ${label}` : ''}\n`,
      );
    },
    async close() {
      await server?.close();
      await tracing?.shutdown();
    },
  };
}
