import { ErrorCode } from '@marie/core';

// This transport's code <-> wire mapping (one per transport, as transport-grpc's codes.ts is for
// gRPC). Where Jina's HTTP peers fix a status it is theirs: 422 for input at fault (FastAPI's; an
// out-of-range value too), 503 for an unreachable executor and 504 for a deadline (spec/wire.md);
// 413 for a request past a limit. The rest follow connect's HTTP mapping.
const TO_HTTP: Record<ErrorCode, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 422,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 413,
  failed_precondition: 412,
  aborted: 409,
  out_of_range: 422,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

// The inverse: each status the table gives, to the code a client should see (where two codes share
// a status, the commoner), and the statuses other HTTP servers answer for the same things.
const FROM_HTTP = new Map<number, ErrorCode>([
  [400, ErrorCode.InvalidArgument],
  [401, ErrorCode.Unauthenticated],
  [403, ErrorCode.PermissionDenied],
  [404, ErrorCode.NotFound],
  [408, ErrorCode.DeadlineExceeded],
  [409, ErrorCode.Aborted],
  [412, ErrorCode.FailedPrecondition],
  [413, ErrorCode.ResourceExhausted],
  [422, ErrorCode.InvalidArgument],
  [429, ErrorCode.ResourceExhausted],
  [499, ErrorCode.Canceled],
  [500, ErrorCode.Internal],
  [501, ErrorCode.Unimplemented],
  [502, ErrorCode.Unavailable],
  [503, ErrorCode.Unavailable],
  [504, ErrorCode.DeadlineExceeded],
]);

/** The HTTP status a MarieError's code answers with. */
export function toHttpStatus(code: ErrorCode): number {
  return TO_HTTP[code];
}

/**
 * The code of an HTTP error status. A status the table does not name falls back by its class, the
 * one fallback every client here uses: another 4xx is the request's fault (invalid_argument),
 * another 5xx the server's (internal), anything else unknown.
 */
export function fromHttpStatus(status: number): ErrorCode {
  const known = FROM_HTTP.get(status);
  if (known) return known;
  if (status >= 400 && status < 500) return ErrorCode.InvalidArgument;
  if (status >= 500 && status < 600) return ErrorCode.Internal;
  return ErrorCode.Unknown;
}
