// @marie/pipelines: plans run as durable DAGs on pg-boss flows.

// Plans: the model, its checks, the builder, Marie's plan JSON, and how a plan reads as text.
export { type NodeOptions, PlanBuilder, plan } from './builder.js';
export {
  type DagJobData,
  Dags,
  type DagsOptions,
  GROUP_TIERS,
  READY_CHANNEL,
  type RunEnd,
  slaBucket,
} from './dags.js';
// Runs: expansion and resolution, the engine on Postgres, its workers and HTTP API.
export {
  CONTROL_QUEUE,
  cappedQueue,
  decide,
  type Edge,
  edge,
  expand,
  MAX_MAP_CAP,
  mapsPages,
  type NodeRun,
  queueFor,
  type RunContext,
  type RunRow,
  resolveRefs,
} from './expand.js';
export {
  CONTROL_KINDS,
  type Endpoint,
  FAILURE_POLICIES,
  type FailurePolicy,
  type KnownEndpoints,
  loadPlanFile,
  NODE_KINDS,
  type NodeKind,
  PLAN_DEFAULTS,
  type Plan,
  type PlanNode,
  parseEndpoint,
  parsePlan,
  planFromMarie,
  type RetryPolicy,
} from './plan.js';
export { planMermaid, planText } from './render.js';
export { type DagRoutesOptions, dagRoutes } from './routes.js';
export {
  DagService,
  type DagsConfig,
  deploymentTarget,
  knownEndpoints,
  loadPlans,
  parseDagsConfig,
} from './service.js';
export { dagUi } from './ui.js';
export { type DagTarget, DagWorker, type DagWorkerOptions } from './worker.js';
