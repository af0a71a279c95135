// The job API's contract, as the job methods take and answer it (@marie/jobs-contract).
export type {
  JobCreated,
  JobListQuery,
  JobPage,
  JobSubmission,
  JobView,
} from '@marie/jobs-contract';
export {
  Client,
  type ClientOptions,
  type PostOptions,
  type Protocol,
  resolveAddress,
} from './client.js';
export { JobsClient } from './jobs.js';
