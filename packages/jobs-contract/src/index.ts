// @marie/jobs-contract: what the job API says, once: its TypeBox schemas and their types, shared
// by the server (@marie/jobs) and its clients (@marie/client) without pg or pg-boss.
export {
  isTerminalState,
  JOB_STATES,
  JobApiError,
  JobCreated,
  JobListQuery,
  JobPage,
  JobState,
  JobView,
  TERMINAL_STATES,
} from './job.js';
export { JobSubmission, parseSubmission, queueOf, SUBMIT_DEFAULTS } from './submission.js';
