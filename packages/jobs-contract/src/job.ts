import { type Static, Type } from '@sinclair/typebox';

/** pg-boss's job states, and `expired`: a run that outlived `expire_in` (Marie's enum). */
export const JOB_STATES = [
  'created',
  'retry',
  'active',
  'completed',
  'expired',
  'cancelled',
  'failed',
] as const;

/** A job's state, as the job API answers it. */
export const JobState = Type.Union(
  JOB_STATES.map((s) => Type.Literal(s)),
  { description: JOB_STATES.join(' | ') },
);
export type JobState = (typeof JOB_STATES)[number];

/** The states a job never leaves: its run is over, one way or another. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set<JobState>([
  'completed',
  'expired',
  'cancelled',
  'failed',
]);

/** Whether a job in `state` is over (completed, expired, cancelled or failed). */
export function isTerminalState(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

/** A job as the API answers it (`GET /api/v1/jobs/:id`, the list, a cancel, its events). */
export const JobView = Type.Object(
  {
    job_id: Type.String({ description: 'uuid' }),
    queue: Type.String(),
    state: JobState,
    attempts: Type.Integer({
      description:
        'runs started so far (pg-boss counts retries: attempts = retries + 1 once it ran)',
    }),
    retry_limit: Type.Integer(),
    priority: Type.Integer(),
    endpoint: nullable(Type.String()),
    asset_key: nullable(Type.String()),
    ref_id: nullable(Type.String()),
    ref_type: nullable(Type.String()),
    created_on: Type.String({ description: 'ISO time' }),
    start_after: Type.String({ description: 'ISO time' }),
    started_on: nullable(Type.String()),
    completed_on: nullable(Type.String()),
    result: Type.Optional(Type.Unknown({ description: 'what the run answered (completed)' })),
    error: Type.Optional(
      Type.Object(
        { name: Type.Optional(Type.String()), message: Type.String() },
        { description: 'why it failed (failed, expired)' },
      ),
    ),
  },
  { $id: 'JobView' },
);
export type JobView = Static<typeof JobView>;

/** What a submit answers (202): the job, and whether this call created it (idempotency keys). */
export const JobCreated = Type.Object({ job_id: Type.String(), created: Type.Boolean() });
export type JobCreated = Static<typeof JobCreated>;

/** `GET /api/v1/jobs`'s query: by state and queue, newest first, a page at a time. */
export const JobListQuery = Type.Object({
  state: Type.Optional(JobState),
  queue: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  after: Type.Optional(Type.String({ description: 'the last job_id of the previous page' })),
});
export type JobListQuery = Static<typeof JobListQuery>;

/** A page of jobs; `next` is the `after` of the next page (null on the last). */
export const JobPage = Type.Object({
  jobs: Type.Array(JobView),
  next: Type.Union([Type.String(), Type.Null()]),
});
export type JobPage = Static<typeof JobPage>;

/** An error answer of the job API: what went wrong, and the field at fault for a 422. */
export const JobApiError = Type.Object({
  detail: Type.String(),
  field: Type.Optional(Type.String()),
});
export type JobApiError = Static<typeof JobApiError>;
