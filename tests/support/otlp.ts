// An OTLP/gRPC trace receiver, as a collector is one: it serves
// opentelemetry.proto.collector.trace.v1.TraceService/Export and keeps every span it is sent,
// with its resource's attributes (service.name, process.pid).
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string;
  pid: number;
  attributes: Record<string, string | number | boolean>;
  status: number;
}

interface KeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string; doubleValue?: number };
}

function attributes(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (!value) continue;
    out[key] =
      value.stringValue ??
      value.boolValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.doubleValue ??
      '';
  }
  return out;
}

export interface OtlpReceiver {
  port: number;
  spans: ReceivedSpan[];
  /** Resolves once `predicate` holds for the spans received (polling), or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const definition = loadSync(join(import.meta.dirname, 'otlp-trace.proto'), {
    keepCase: false,
    longs: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const service = pkg.opentelemetry.proto.collector.trace.v1.TraceService.service;
  const spans: ReceivedSpan[] = [];
  const server = new grpc.Server();
  server.addService(service, {
    Export: (call: grpc.ServerUnaryCall<any, unknown>, done: grpc.sendUnaryData<unknown>) => {
      for (const rs of call.request.resourceSpans ?? []) {
        const resource = attributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({
              traceId: Buffer.from(s.traceId).toString('hex'),
              spanId: Buffer.from(s.spanId).toString('hex'),
              parentSpanId: Buffer.from(s.parentSpanId ?? []).toString('hex'),
              name: s.name,
              kind: s.kind,
              service: String(resource['service.name'] ?? ''),
              pid: Number(resource['process.pid'] ?? 0),
              attributes: attributes(s.attributes),
              status: s.status?.code ?? 0,
            });
      }
      done(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    spans,
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans)) {
        if (Date.now() > deadline)
          throw new Error(
            `spans not as expected after ${timeoutMs} ms: ${JSON.stringify(
              spans.map((s) => `${s.service}/${s.pid} ${s.name}`),
            )}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
