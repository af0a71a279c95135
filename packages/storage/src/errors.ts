import { ErrorCode, MarieError } from '@marie/core';

/**
 * A storage failure (Postgres, S3, the file system): what the client of a request sees, with the
 * cause. The code is UNAVAILABLE when retrying later may succeed, INTERNAL otherwise.
 */
export class StorageError extends MarieError {
  override name = 'StorageError';
  /** The driver's error code when there is one (SQLSTATE `57P01`, `ECONNREFUSED`, `NoSuchKey`). */
  readonly reason?: string;

  constructor(
    message: string,
    options: { cause?: unknown; transient?: boolean; reason?: string; code?: ErrorCode } = {},
  ) {
    super(
      options.code ?? (options.transient ? ErrorCode.Unavailable : ErrorCode.Internal),
      message,
      options.cause === undefined ? {} : { cause: options.cause },
    );
    if (options.reason !== undefined) this.reason = options.reason;
  }
}

/** Strips every occurrence of a secret from a message (drivers sometimes echo connection strings). */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 1) out = out.split(s).join('***');
  // A URL's userinfo, whoever wrote it.
  return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):[^@\s]*@/gi, '$1:***@');
}

/** The message of anything thrown, with its code when it has one. */
export function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return describe(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const msg = err.message || err.name;
    return typeof code === 'string' && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  return String(err);
}
