import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, MarieError } from '@marie/core';

// This transport's code <-> wire mapping (one per transport, like connect-es's code.ts).
const TO_GRPC: Record<ErrorCode, GrpcStatus> = {
  canceled: GrpcStatus.CANCELLED,
  unknown: GrpcStatus.UNKNOWN,
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  not_found: GrpcStatus.NOT_FOUND,
  already_exists: GrpcStatus.ALREADY_EXISTS,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  aborted: GrpcStatus.ABORTED,
  out_of_range: GrpcStatus.OUT_OF_RANGE,
  unimplemented: GrpcStatus.UNIMPLEMENTED,
  internal: GrpcStatus.INTERNAL,
  unavailable: GrpcStatus.UNAVAILABLE,
  data_loss: GrpcStatus.DATA_LOSS,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
};

const FROM_GRPC = new Map<number, ErrorCode>(
  Object.entries(TO_GRPC).map(([code, grpc]) => [grpc, code as ErrorCode]),
);

export function toGrpcStatus(code: ErrorCode): GrpcStatus {
  return TO_GRPC[code];
}

/** A gRPC error as the client hands it to its caller. */
export function fromGrpcError(err: unknown): MarieError {
  if (err instanceof MarieError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code === 'number') {
    return new MarieError(
      FROM_GRPC.get(e.code) ?? ErrorCode.Unknown,
      e.details || e.message || 'gRPC error',
      { cause: err },
    );
  }
  return MarieError.from(err);
}

/** A status for a server call to fail with: `message` is both the error's and the status details. */
export function serviceError(code: GrpcStatus, message: string): ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new Metadata() });
}
