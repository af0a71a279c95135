import { ErrorCode, MarieError } from '@marie/core';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';

/**
 * What `POST /api/v1/jobs` takes: the endpoint the job runs (or a named queue), Marie's reference
 * fields and parameters, and pg-boss's scheduling options (seconds, as pg-boss counts them).
 */
// Postgres stores these: text cannot hold U+0000, integer columns end at 2^31 - 1, and pg-boss's
// queue names are letters, digits, `_`, `-` and `.` (an endpoint's slashes become dots).
const NO_NUL = '^[^\\u0000]*$';
const INT32 = 2 ** 31 - 1;

export const JobSubmission = Type.Object(
  {
    endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: '^/[A-Za-z0-9_./-]*$',
        description: "e.g. '/document/extract'",
      }),
    ),
    queue: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: '^[A-Za-z0-9_.-]+$',
        description: 'a named queue; default: the endpoint, slashes as dots',
      }),
    ),
    asset_key: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL })),
    ref_id: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL })),
    ref_type: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    priority: Type.Optional(
      Type.Integer({ minimum: -INT32, maximum: INT32, description: 'higher runs first' }),
    ),
    retry_limit: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description: 'retries after the first attempt (Marie: 2)',
      }),
    ),
    retry_delay: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: INT32,
        description: 'seconds before a retry (Marie: 2)',
      }),
    ),
    retry_backoff: Type.Optional(
      Type.Boolean({ description: 'double the delay each retry, with jitter (Marie: true)' }),
    ),
    expire_in: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: INT32,
        description: 'seconds a run may take before it is retried or failed (15 min)',
      }),
    ),
    start_after: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: INT32 })], {
        description: 'an ISO time, or seconds from now',
      }),
    ),
    idempotency_key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: NO_NUL,
        description: 'the same key returns the same job',
      }),
    ),
  },
  { additionalProperties: false },
);
export type JobSubmission = Static<typeof JobSubmission>;

/** Marie's submit defaults (marie/scheduler/models.py): 2 retries, 2 s apart, backing off. */
export const SUBMIT_DEFAULTS = { retry_limit: 2, retry_delay: 2, retry_backoff: true } as const;

/** The queue a submission goes to: its `queue`, else its endpoint with slashes as dots. */
export function queueOf(s: Pick<JobSubmission, 'endpoint' | 'queue'>): string {
  if (s.queue) return s.queue;
  return s.endpoint!.replace(/^\/+/, '').replace(/\//g, '.') || 'default';
}

/**
 * A submission checked against the schema; an error names the first field that is wrong
 * (`MarieError` invalid_argument with `field`, which the HTTP routes answer as 422).
 */
export function parseSubmission(body: unknown): JobSubmission {
  const s = checkBody(JobSubmission, body, 'the job');
  if (!s.endpoint && !s.queue)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      'endpoint: an endpoint or a queue is required',
      {
        field: 'endpoint',
      },
    );
  checkNoNul(s.parameters, 'parameters');
  if (typeof s.start_after === 'string' && Number.isNaN(Date.parse(s.start_after)))
    throw new MarieError(ErrorCode.InvalidArgument, 'start_after: not a date-time', {
      field: 'start_after',
    });
  return s;
}

/**
 * `body` checked against `schema`: a MarieError (invalid_argument) names the first field that is
 * wrong (`field`, which the HTTP routes answer as 422), or `body` when it is not an object.
 */
export function checkBody<T extends TSchema>(schema: T, body: unknown, what: string): Static<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new MarieError(ErrorCode.InvalidArgument, `${what} must be a JSON object`, {
      field: 'body',
    });
  const first = Value.Errors(schema, body).First();
  if (first) {
    const field = first.path.replace(/^\//, '').replace(/\//g, '.') || 'body';
    const extra = first.type === ValueErrorType.ObjectAdditionalProperties;
    throw new MarieError(
      ErrorCode.InvalidArgument,
      extra ? `${field}: unknown field` : `${field}: ${first.message}`,
      { field },
    );
  }
  return body as Static<T>;
}

/** Throws naming the first key or string under `value` holding U+0000 (Postgres cannot store it). */
export function checkNoNul(value: unknown, root: string): void {
  const nul = nulIn(value, root);
  if (nul)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${nul}: contains U+0000, which Postgres cannot store`,
      { field: nul },
    );
}

/** The path of the first key or string holding U+0000 (walked without recursion), or undefined. */
function nulIn(value: unknown, root: string): string | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => {
        stack.push([item, `${path}[${i}]`]);
      });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        if (k.includes('\u0000')) return path;
        stack.push([item, `${path}.${k}`]);
      }
    }
  }
  return undefined;
}
