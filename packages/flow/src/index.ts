export {
  Deployment,
  type DeploymentOptions,
  type Polling,
  type PollingMode,
  type PostOptions,
  reduceAnswers,
} from './deployment.js';
export { marieBin } from './replica.js';
