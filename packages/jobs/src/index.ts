// @marie/jobs: document jobs on Postgres with pg-boss.
export {
  CANCEL_CHANNEL,
  JOB_STATES,
  type JobData,
  type JobEvent,
  type JobState,
  Jobs,
  type JobsOptions,
  type JobView,
  SUBMIT_CHANNEL,
  TERMINAL_STATES,
} from './jobs.js';
export { type JobRoutesOptions, jobRoutes } from './routes.js';
export {
  JobService,
  type JobsConfig,
  parseJobsConfig,
  parseQueues,
  processorTarget,
} from './service.js';
export { JobSubmission, parseSubmission, queueOf, SUBMIT_DEFAULTS } from './submission.js';
export { jobUi } from './ui.js';
export {
  type JobOutcome,
  type JobRun,
  type JobTarget,
  JobWorker,
  type JobWorkerOptions,
} from './worker.js';
