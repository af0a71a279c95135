import type * as grpc from '@grpc/grpc-js';
import { health, jina } from '@marie/proto';

interface MessageCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

interface GenericMethod {
  name: string;
  requestType: MessageCodec<any>;
  requestStream: boolean;
  responseType: MessageCodec<any>;
  responseStream: boolean;
}

export interface GenericService {
  fullName: string;
  methods: Record<string, GenericMethod>;
}

/** Bytes as a Buffer without copying them. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * An answer encoded only when grpc-js serializes it, into a buffer lent for that moment: grpc-js
 * copies the serialized bytes into its own length-prefixed frame before `serializeMessage`
 * returns (server-interceptors.js), so one buffer can be lent to every answer. That saves an
 * ArrayBuffer per answer, and ArrayBuffer bytes are what drive V8's major GCs under load.
 */
export class WireAnswer {
  constructor(readonly encode: (lend: (size: number) => Buffer) => Uint8Array) {}
}

const LEND_MAX = 4 * 1024 * 1024;
let lent = Buffer.allocUnsafeSlow(64 * 1024);

/** `size` bytes of the one lent buffer (answers over 4 MiB get their own). */
function lend(size: number): Buffer {
  if (size > LEND_MAX) return Buffer.allocUnsafe(size);
  if (size > lent.length)
    lent = Buffer.allocUnsafeSlow(Math.min(LEND_MAX, Math.max(size, 2 * lent.length)));
  return lent.subarray(0, size);
}

export interface DefinitionOptions {
  /**
   * Hand the server the request bytes undecoded for these methods, so that it decodes them itself
   * and answers garbage with INVALID_ARGUMENT (grpc-js would answer INTERNAL).
   */
  rawRequests?: readonly string[];
  /** Let the server answer with bytes it already encoded (Uint8Array) or a WireAnswer as well as messages. */
  rawResponses?: boolean;
}

/** A grpc-js service definition from a ts-proto generic definition; method paths stay exact. */
export function grpcDefinition(
  service: GenericService,
  options: DefinitionOptions = {},
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<any, any>> = {};
  // Keyed by the rpc's own name (`process_single_data`, `Call`): implementations use the same keys.
  for (const m of Object.values(service.methods)) {
    const raw = options.rawRequests?.includes(m.name) ?? false;
    out[m.name] = {
      path: `/${service.fullName}/${m.name}`,
      originalName: m.name,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (value: unknown) =>
        asBuffer(value instanceof Uint8Array ? value : m.requestType.encode(value).finish()),
      requestDeserialize: raw
        ? (bytes: Buffer) => bytes
        : (bytes: Buffer) => m.requestType.decode(bytes),
      responseSerialize: (value: unknown) => {
        if (options.rawResponses) {
          if (value instanceof Uint8Array) return asBuffer(value);
          if (value instanceof WireAnswer) return asBuffer(value.encode(lend));
        }
        return asBuffer(m.responseType.encode(value).finish());
      },
      responseDeserialize: (bytes: Buffer) => m.responseType.decode(bytes),
    };
  }
  return out as grpc.ServiceDefinition;
}

const DATA_METHODS = ['process_single_data', 'process_data', 'Call', 'stream_doc'];

type ServiceName =
  | 'singleData'
  | 'data'
  | 'call'
  | 'streamDoc'
  | 'discovery'
  | 'dryRun'
  | 'info'
  | 'snapshot'
  | 'snapshotProgress'
  | 'restore'
  | 'restoreProgress'
  | 'health';

/** Every executor-side service of spec/wire.md, plus health; keyed by full service name. */
export const SERVICES: Readonly<Record<ServiceName, GenericService>> = {
  singleData: jina.JinaSingleDataRequestRPCDefinition,
  data: jina.JinaDataRequestRPCDefinition,
  call: jina.JinaRPCDefinition,
  streamDoc: jina.JinaSingleDocumentRequestRPCDefinition,
  discovery: jina.JinaDiscoverEndpointsRPCDefinition,
  dryRun: jina.JinaGatewayDryRunRPCDefinition,
  info: jina.JinaInfoRPCDefinition,
  snapshot: jina.JinaExecutorSnapshotDefinition,
  snapshotProgress: jina.JinaExecutorSnapshotProgressDefinition,
  restore: jina.JinaExecutorRestoreDefinition,
  restoreProgress: jina.JinaExecutorRestoreProgressDefinition,
  health: health.HealthDefinition,
};

export function serverDefinition(service: GenericService): grpc.ServiceDefinition {
  return grpcDefinition(service, { rawRequests: DATA_METHODS, rawResponses: true });
}
