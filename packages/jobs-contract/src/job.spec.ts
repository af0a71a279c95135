import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { isTerminalState, JOB_STATES, JobPage, JobView, TERMINAL_STATES } from './job.js';

const view = {
  job_id: '0b8c2b4e-6a53-4bd2-9d1c-3f7d2b1a9e10',
  queue: 'document.extract',
  state: 'failed',
  attempts: 3,
  retry_limit: 2,
  priority: 0,
  endpoint: '/document/extract',
  asset_key: null,
  ref_id: 'doc-1',
  ref_type: null,
  created_on: '2026-12-07T00:00:00.000Z',
  start_after: '2026-12-07T00:00:00.000Z',
  started_on: '2026-12-07T00:00:01.000Z',
  completed_on: '2026-12-07T00:00:02.000Z',
  error: { name: 'Error', message: 'boom' },
};

describe('the job contract', () => {
  it('describes a job view, and refuses one with a state pg-boss does not have', () => {
    expect(Value.Check(JobView, view)).toBe(true);
    expect(Value.Check(JobPage, { jobs: [view], next: null })).toBe(true);
    expect(Value.Check(JobView, { ...view, state: 'done' })).toBe(false);
    expect(Value.Check(JobView, { ...view, error: { name: 'Error' } })).toBe(false);
  });

  it('names the states a job never leaves', () => {
    expect(JOB_STATES.filter(isTerminalState)).toEqual([...TERMINAL_STATES]);
    expect(isTerminalState('active')).toBe(false);
    expect(isTerminalState('expired')).toBe(true);
  });
});
