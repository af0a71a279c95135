// @marie/jobs-contract: what the job and DAG APIs say, once: their TypeBox schemas and types,
// shared by the servers (@marie/jobs, @marie/pipelines) and their clients (@marie/client) without
// pg or pg-boss.
export {
  DAG_ENDED,
  DAG_STATES,
  DagCreated,
  DagListQuery,
  DagNodeView,
  DagPage,
  DagState,
  DagSubmission,
  DagView,
  NODE_ENDED,
  NODE_STATES,
  NodeState,
  parseDagSubmission,
  slaTime,
} from './dag.js';
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
export {
  checkBody,
  checkNoNul,
  JobSubmission,
  parseSubmission,
  queueOf,
  SUBMIT_DEFAULTS,
} from './submission.js';
