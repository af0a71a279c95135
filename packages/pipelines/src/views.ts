import { type DagNodeView, type DagView, NODE_ENDED } from '@marie/jobs-contract';
import type { DagRow, NodeRow } from './dags.js';
import type { Plan } from './plan.js';

// DAG and node rows as the DAG API answers them.

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);

/** A DAG row as the API shows it (nodes counted from `nodes`, or given). */
export function dagView(dag: DagRow, nodes?: NodeRow[], done?: number, total?: number): DagView {
  const now = Date.now();
  const at = dag.ended_on ? new Date(dag.ended_on).getTime() : now;
  const late =
    dag.hard_sla && at > new Date(dag.hard_sla).getTime()
      ? 'hard'
      : dag.soft_sla && at > new Date(dag.soft_sla).getTime()
        ? 'soft'
        : 'no';
  return {
    dag_id: dag.id,
    plan: dag.plan,
    version: dag.version,
    state: dag.state,
    asset_key: dag.asset_key,
    ref_id: dag.ref_id,
    ref_type: dag.ref_type,
    pages: dag.pages,
    priority: dag.priority,
    soft_sla: iso(dag.soft_sla),
    hard_sla: iso(dag.hard_sla),
    late,
    created_on: iso(dag.created_on)!,
    started_on: iso(dag.started_on),
    ended_on: iso(dag.ended_on),
    nodes_done: done ?? nodes?.filter((n) => NODE_ENDED.has(n.state)).length ?? 0,
    nodes_total: total ?? nodes?.length ?? 0,
    ...(dag.error ? { error: dag.error } : {}),
  };
}

/** A node row read for `GET`, with its output and, while it may run, its pg-boss job. */
export type ViewRow = NodeRow & {
  inline: unknown;
  key: string | null;
  job_state: string | null;
  job_started: Date | null;
  job_retries: number | null;
};

export function nodeView(
  n: NodeRow & { inline: unknown; key: string | null },
  outputs: boolean,
  plan: Plan,
): DagNodeView {
  const started = n.started_on ? new Date(n.started_on).getTime() : null;
  const ended = n.ended_on ? new Date(n.ended_on).getTime() : null;
  return {
    node_id: n.node_id,
    kind: n.kind,
    job_id: n.job_id,
    endpoint: plan.byId.get(n.plan_node)?.endpoint?.raw ?? null,
    needs: n.needs,
    level: n.level,
    state: n.state,
    attempts: n.attempts - n.attempt_base,
    runs: n.runs,
    started_on: iso(n.started_on),
    ended_on: iso(n.ended_on),
    duration_ms: started !== null && ended !== null ? ended - started : null,
    ...(outputs && n.inline !== null && n.inline !== undefined ? { output: n.inline } : {}),
    ...(n.key ? { output_key: n.key } : {}),
    ...(n.error ? { error: n.error } : {}),
  };
}
