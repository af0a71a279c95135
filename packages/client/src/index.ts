export {
  Client,
  type ClientOptions,
  type PostOptions,
  type Protocol,
  resolveAddress,
} from './client.js';
export { type Job, type JobRequest, JobsClient } from './jobs.js';
