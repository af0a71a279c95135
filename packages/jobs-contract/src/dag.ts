import { ErrorCode, MarieError } from '@marie/core';
import { type Static, Type } from '@sinclair/typebox';
import { checkBody, checkNoNul } from './submission.js';

// What the DAG API (`/api/v1/dags`) says: a pipeline run of a plan over one asset.

const NO_NUL = '^[^\\u0000]*$';
const INT32 = 2 ** 31 - 1;

/** A DAG run's states: pending (nothing started), running, then one of the three ends. */
export const DAG_STATES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export const DagState = Type.Union(
  DAG_STATES.map((s) => Type.Literal(s)),
  { description: DAG_STATES.join(' | ') },
);
export type DagState = (typeof DAG_STATES)[number];

/**
 * A node run's states: blocked (waiting for its parents), pending (runnable, waiting for a slot),
 * active, then completed, failed, cancelled or skipped (a branch not taken, a parent skipped or
 * failed under `skip_dependents`).
 */
export const NODE_STATES = [
  'blocked',
  'pending',
  'active',
  'completed',
  'failed',
  'cancelled',
  'skipped',
] as const;
export const NodeState = Type.Union(
  NODE_STATES.map((s) => Type.Literal(s)),
  { description: NODE_STATES.join(' | ') },
);
export type NodeState = (typeof NODE_STATES)[number];

/** The states a node run never leaves (until a retry of its DAG starts it again). */
export const NODE_ENDED: ReadonlySet<NodeState> = new Set<NodeState>([
  'completed',
  'failed',
  'cancelled',
  'skipped',
]);
/** The states a DAG run never leaves (until a retry). */
export const DAG_ENDED: ReadonlySet<DagState> = new Set<DagState>([
  'completed',
  'failed',
  'cancelled',
]);

const when = Type.Union(
  [Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: INT32 })],
  { description: 'an ISO time, or seconds from now' },
);

/** What `POST /api/v1/dags` takes. */
export const DagSubmission = Type.Object(
  {
    plan: Type.Union(
      [
        Type.String({
          minLength: 1,
          maxLength: 200,
          pattern: NO_NUL,
          description: 'a plan the server knows, by name (or name@version)',
        }),
        Type.Record(Type.String(), Type.Unknown(), { description: 'a plan written inline' }),
      ],
      { description: 'a known plan by name, or an inline plan (our YAML shape or Marie JSON)' },
    ),
    asset_key: Type.Optional(
      Type.String({ minLength: 1, pattern: NO_NUL, description: 'the document the plan reads' }),
    ),
    ref_id: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL })),
    ref_type: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL })),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "the plan's `$.input`" }),
    ),
    priority: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 999, description: 'higher runs first (0-999)' }),
    ),
    soft_sla: Type.Optional(when),
    hard_sla: Type.Optional(when),
    idempotency_key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: NO_NUL,
        description: 'the same key returns the same DAG',
      }),
    ),
  },
  { additionalProperties: false },
);
export type DagSubmission = Static<typeof DagSubmission>;

/** A submission checked against the schema; errors name the field (422 over HTTP). */
export function parseDagSubmission(body: unknown): DagSubmission {
  const s = checkBody(DagSubmission, body, 'the DAG');
  checkNoNul(s.parameters, 'parameters');
  checkNoNul(typeof s.plan === 'object' ? s.plan : undefined, 'plan');
  for (const k of ['soft_sla', 'hard_sla'] as const) {
    const v = s[k];
    if (typeof v === 'string' && Number.isNaN(Date.parse(v)))
      throw new MarieError(ErrorCode.InvalidArgument, `${k}: not a date-time`, { field: k });
  }
  return s;
}

/** An SLA given as a time or as seconds from `now`. */
export function slaTime(v: string | number | undefined, now = Date.now()): Date | null {
  if (v === undefined) return null;
  return typeof v === 'number' ? new Date(now + v * 1000) : new Date(v);
}

const nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const time = () => nullable(Type.String({ description: 'ISO time' }));

/** One node of a DAG run, as the API answers it. */
export const DagNodeView = Type.Object({
  node_id: Type.String({ description: "the plan's node id; a map's page i is `id[i]`" }),
  kind: Type.String(),
  job_id: Type.String({ description: "the pg-boss job of its current run (Marie's job record)" }),
  endpoint: nullable(Type.String()),
  needs: Type.Array(Type.String(), { description: 'the node runs it waits for' }),
  level: Type.Integer({ description: 'depth in the DAG (roots 0)' }),
  state: NodeState,
  attempts: Type.Integer({ description: 'attempts of the current run' }),
  runs: Type.Integer({ description: 'times the node was run to an end, retries of the DAG too' }),
  started_on: time(),
  ended_on: time(),
  duration_ms: Type.Union([Type.Number(), Type.Null()]),
  output: Type.Optional(Type.Unknown({ description: 'inline output (small JSON)' })),
  output_key: Type.Optional(Type.String({ description: 'where a large output is stored' })),
  error: Type.Optional(Type.Object({ message: Type.String() })),
});
export type DagNodeView = Static<typeof DagNodeView>;

/** A DAG run, as the API answers it. */
export const DagView = Type.Object(
  {
    dag_id: Type.String({ description: 'uuid' }),
    plan: Type.String(),
    version: Type.Integer(),
    state: DagState,
    asset_key: nullable(Type.String()),
    ref_id: nullable(Type.String()),
    ref_type: nullable(Type.String()),
    pages: Type.Union([Type.Integer(), Type.Null()]),
    priority: Type.Integer(),
    soft_sla: time(),
    hard_sla: time(),
    late: Type.Union([Type.Literal('no'), Type.Literal('soft'), Type.Literal('hard')], {
      description: 'past its soft or hard SLA (while running, or when it ended)',
    }),
    created_on: Type.String(),
    started_on: time(),
    ended_on: time(),
    nodes_done: Type.Integer({
      description: 'nodes ended (completed, failed, cancelled, skipped)',
    }),
    nodes_total: Type.Integer(),
    error: Type.Optional(Type.Object({ node_id: Type.String(), message: Type.String() })),
    nodes: Type.Optional(Type.Array(DagNodeView)),
  },
  { $id: 'DagView' },
);
export type DagView = Static<typeof DagView>;

export const DagCreated = Type.Object({ dag_id: Type.String(), created: Type.Boolean() });
export type DagCreated = Static<typeof DagCreated>;

export const DagListQuery = Type.Object({
  state: Type.Optional(DagState),
  plan: Type.Optional(Type.String()),
  ref_id: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  after: Type.Optional(Type.String({ description: 'the last dag_id of the previous page' })),
});
export type DagListQuery = Static<typeof DagListQuery>;

export const DagPage = Type.Object({
  dags: Type.Array(DagView),
  next: Type.Union([Type.String(), Type.Null()]),
});
export type DagPage = Static<typeof DagPage>;
