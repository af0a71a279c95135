// @marie/jobs: document jobs on Postgres with pg-boss.

// The job API's contract (@marie/jobs-contract), for users of this package alone.
export {
  isTerminalState,
  JOB_STATES,
  JobState,
  JobSubmission,
  JobView,
  parseSubmission,
  queueOf,
  SUBMIT_DEFAULTS,
  TERMINAL_STATES,
} from '@marie/jobs-contract';
export {
  CANCEL_CHANNEL,
  type JobData,
  type JobEvent,
  Jobs,
  type JobsOptions,
  SUBMIT_CHANNEL,
} from './jobs.js';
export { Listener, type ListenerOptions } from './listener.js';
export { apiErrors, followEvents, type JobRoutesOptions, jobRoutes } from './routes.js';
export {
  JobService,
  type JobsConfig,
  parseJobsConfig,
  parseQueues,
  processorTarget,
} from './service.js';
export { jobUi, readUiFile } from './ui.js';
export { isUuid } from './view.js';
export {
  type JobOutcome,
  type JobRun,
  type JobTarget,
  JobWorker,
  type JobWorkerOptions,
} from './worker.js';
