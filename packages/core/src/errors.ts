import { DocValidationError } from '@marie/docs';

/**
 * The closed set of error codes, gRPC's (connect-es and tRPC keep the same set). Each transport
 * owns its code -> wire mapping.
 */
export const ErrorCode = {
  Canceled: 'canceled',
  Unknown: 'unknown',
  InvalidArgument: 'invalid_argument',
  DeadlineExceeded: 'deadline_exceeded',
  NotFound: 'not_found',
  AlreadyExists: 'already_exists',
  PermissionDenied: 'permission_denied',
  ResourceExhausted: 'resource_exhausted',
  FailedPrecondition: 'failed_precondition',
  Aborted: 'aborted',
  OutOfRange: 'out_of_range',
  Unimplemented: 'unimplemented',
  Internal: 'internal',
  Unavailable: 'unavailable',
  DataLoss: 'data_loss',
  Unauthenticated: 'unauthenticated',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a peer reported about an exception (spec/wire.md, StatusProto.ExceptionProto). */
export interface RemoteException {
  name: string;
  args: string[];
  stacks: string[];
  executor: string;
}

export interface MarieErrorOptions {
  cause?: unknown;
  /** The field a validation error is about (`docs[3].embedding`, `parameters.job_id`). */
  field?: string;
  /** The exception as a remote executor reported it. */
  remote?: RemoteException;
}

/** The one error class of Marie: a code, a message, and what a remote peer said, if any. */
export class MarieError extends Error {
  override name = 'MarieError';
  readonly code: ErrorCode;
  readonly field?: string;
  readonly remote?: RemoteException;

  constructor(code: ErrorCode, message: string, options: MarieErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.remote !== undefined) this.remote = options.remote;
  }

  /** Any thrown value as a MarieError: validation errors are invalid_argument, aborts canceled. */
  static from(value: unknown, fallback: ErrorCode = ErrorCode.Unknown): MarieError {
    if (value instanceof MarieError) return value;
    if (value instanceof DocValidationError) {
      return new MarieError(ErrorCode.InvalidArgument, value.message, {
        cause: value,
        field: value.path,
      });
    }
    // A recursive reader (a codec, coercion) that ran out of stack on input nested thousands of
    // levels deep: the input is at fault, not the server.
    if (value instanceof RangeError && /call stack/i.test(value.message)) {
      return new MarieError(
        ErrorCode.InvalidArgument,
        'input nested too deeply to read (a recursive reader ran out of stack)',
        { cause: value },
      );
    }
    if (value instanceof Error) {
      const code = value.name === 'AbortError' ? ErrorCode.Canceled : fallback;
      return new MarieError(code, value.message, { cause: value });
    }
    return new MarieError(fallback, String(value), { cause: value });
  }
}
