export { Deployment, type DeploymentOptions } from './deployment.js';
export {
  CONTAINER_PORT,
  DEFAULT_IMAGE,
  type ExportOptions,
  type ExportPlan,
  isSecretName,
  type PlannedContainer,
  type PlannedVariable,
  planExport,
} from './export.js';
export {
  type ComposeOptions,
  composeEnv,
  toCompose,
} from './export-compose.js';
export { type KubernetesFile, type KubernetesOptions, toKubernetes } from './export-kubernetes.js';
export {
  type EnvLine,
  envLines,
  parseStackServices,
  STACK_SERVICES,
  type StackService,
  stackSettings,
} from './export-stack.js';
export { Flow, type FlowExecutor, type FlowOptions } from './flow.js';
export { Gateway, type GatewayNode, type GatewayOptions, type NodeTarget } from './gateway.js';
export {
  describeGraph,
  END,
  type FlowGraph,
  type GraphNode,
  graphNodes,
  parseGraph,
  START,
} from './graph.js';
export { loadFlow } from './load-flow.js';
export { reduceAnswers } from './reduce-answers.js';
export { parseAddress, RemoteDeployment, type RemoteDeploymentOptions } from './remote.js';
export { marieBin } from './replica.js';
export {
  type Autoscale,
  cudaVisibleDevices,
  type Gpus,
  parseAutoscale,
  parseGpus,
  parseResources,
  type Resources,
} from './resources.js';
export { type Polling, type PollingMode, ShardRouter } from './router.js';
export {
  parsePort,
  parsePorts,
  parseProtocols,
  type Served,
  type ServedAddress,
  type ServeOptions,
  type ServeProtocol,
  schemeOf,
  serveProcessor,
} from './serve.js';
export { type Condition, jsonPathSteps, matches, validateCondition, valueAt } from './when.js';
