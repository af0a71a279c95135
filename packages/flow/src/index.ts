export {
  Deployment,
  type DeploymentOptions,
  type Polling,
  type PollingMode,
  type PostOptions,
} from './deployment.js';
export { Flow, type FlowExecutor, type FlowOptions, type GatewayProtocol } from './flow.js';
export { Gateway, type GatewayNode, type GatewayOptions, type NodeTarget } from './gateway.js';
export { loadFlow } from './load-flow.js';
export { reduceAnswers } from './reduce-answers.js';
export { marieBin } from './replica.js';
export { type Condition, matches } from './when.js';
