import type { JobState, JobView } from '@marie/jobs-contract';
import type { JobWithMetadata } from 'pg-boss';
import type { JobData } from './jobs.js';

/** The columns of pg-boss's job row that a JobView is made of. */
export type JobRow = Pick<
  JobWithMetadata<JobData>,
  | 'id'
  | 'name'
  | 'state'
  | 'retryCount'
  | 'retryLimit'
  | 'priority'
  | 'data'
  | 'output'
  | 'createdOn'
  | 'startAfter'
  | 'startedOn'
  | 'completedOn'
>;

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);

/** A job as the API shows it, from its pg-boss row. */
export function view(j: JobRow): JobView {
  const output = (j.output ?? null) as Record<string, unknown> | null;
  // pg-boss fails a run past its expiry in one of two ways: the supervisor, when the worker is
  // gone ("job timed out"), or the worker itself ("handler execution exceeded 1s").
  const message = ((output?.value ?? output) as { message?: unknown } | null)?.message;
  const timedOut =
    j.state === 'failed' &&
    typeof message === 'string' &&
    (message === 'job timed out' || /^handler execution exceeded \d+s$/.test(message));
  const state: JobState = timedOut ? 'expired' : (j.state as JobState);
  const ran = j.startedOn != null;
  const out: JobView = {
    job_id: j.id,
    queue: j.name,
    state,
    attempts: ran ? j.retryCount + 1 : j.retryCount,
    retry_limit: j.retryLimit,
    priority: j.priority,
    endpoint: j.data?.endpoint ?? null,
    asset_key: j.data?.asset_key ?? null,
    ref_id: j.data?.ref_id ?? null,
    ref_type: j.data?.ref_type ?? null,
    created_on: iso(j.createdOn)!,
    start_after: iso(j.startAfter)!,
    started_on: iso(j.startedOn),
    completed_on: iso(j.completedOn),
  };
  if (state === 'completed') out.result = output;
  if ((state === 'failed' || state === 'expired' || state === 'retry') && output) {
    const e = (output.value ?? output) as { name?: string; message?: string };
    out.error = {
      ...(e.name ? { name: e.name } : {}),
      message: e.message ?? JSON.stringify(output),
    };
  }
  return out;
}

export function isUuid(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}
