// An OTLP/gRPC trace receiver, as a collector is one: it serves
// opentelemetry.proto.collector.trace.v1.TraceService/Export and keeps every span it is sent,
// with its resource's attributes (service.name, process.pid).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

// The part of OpenTelemetry's OTLP trace protocol this receiver reads (field numbers as in
// opentelemetry-proto's collector/trace/v1, trace/v1, common/v1 and resource/v1, in one package
// here: only the service path depends on it). Kept as text, not a .proto file: protos/ holds the
// repository's one committed copy of its own wire contract, and this is not part of it.
const OTLP_TRACE_PROTO = `syntax = "proto3";

package opentelemetry.proto.collector.trace.v1;

service TraceService {
  rpc Export(ExportTraceServiceRequest) returns (ExportTraceServiceResponse) {}
}

message ExportTraceServiceRequest {
  repeated ResourceSpans resource_spans = 1;
}

message ExportTraceServiceResponse {}

message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}

message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}

message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}

message InstrumentationScope {
  string name = 1;
  string version = 2;
}

message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  Status status = 15;
}

message Status {
  string message = 2;
  int32 code = 3;
}

message KeyValue {
  string key = 1;
  AnyValue value = 2;
}

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
  }
}
`;

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
  const dir = mkdtempSync(join(tmpdir(), 'otlp-'));
  writeFileSync(join(dir, 'trace.proto'), OTLP_TRACE_PROTO);
  const definition = loadSync(join(dir, 'trace.proto'), {
    keepCase: false,
    longs: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  rmSync(dir, { recursive: true, force: true });
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
