import { isPlainObject } from '@marie/docs';
import { jsonPathSteps, valueAt } from '@marie/flow';
import type { NodeState } from '@marie/jobs-contract';
import { CONTROL_KINDS, type Plan, type PlanNode } from './plan.js';

/** One node run of a DAG: a plan node, one page of a map over pages, or a map's fan-in. */
export interface NodeRun {
  node_id: string;
  /** The plan's node. */
  plan_node: string;
  /** A map's page (0-based), else null. */
  element: number | null;
  /** `fanin`: the node a map over pages ends in (its children wait for it). */
  kind: PlanNode['kind'] | 'fanin';
  queue: string;
  needs: string[];
  level: number;
}

/** Whether a node maps over the asset's pages (expanded at submit, one run per page). */
export const mapsPages = (n: PlanNode) => n.kind === 'map' && n.map!.over === 'pages';

/** The queue of control runs (branch, switch, merge, noop, fan-in, schema and regex guardrails). */
export const CONTROL_QUEUE = 'dag.control';

/** Map concurrency caps are pg-boss group tiers `c1`…`c64`; a larger cap is no cap (slots bound it). */
export const MAX_MAP_CAP = 64;

/**
 * The queue of an executor's map pages under a concurrency cap: fetched with pg-boss's group
 * concurrency, which costs every fetch a count of the queue's active jobs (kept off the main one).
 */
export const cappedQueue = (queue: string) => `${queue}.capped`;

/** An executor's DAG queue: `dag.<executor>`, or `dag.flow` for the Flow's own endpoints. */
export function queueFor(n: PlanNode): string {
  if (!n.endpoint || (CONTROL_KINDS.has(n.kind) && n.kind !== 'guardrail')) return CONTROL_QUEUE;
  return `dag.${n.endpoint.executor ?? 'flow'}`;
}

/**
 * The runs of a plan over an asset of `pages` pages: a map over pages becomes one run per page
 * (`id[i]`) and its fan-in (`id`); a page of one map waits for the same page of a map it needs
 * (pages flow through a chain of maps one by one), everything else for the fan-in.
 */
export function expand(plan: Plan, pages: number | null): NodeRun[] {
  const runs: NodeRun[] = [];
  for (const n of plan.nodes) {
    const parentRun = (p: string, page: number | null) => {
      const parent = plan.byId.get(p)!;
      return page !== null && mapsPages(parent) ? `${p}[${page}]` : p;
    };
    if (mapsPages(n)) {
      const count = pages ?? 0;
      const elements: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = `${n.id}[${i}]`;
        elements.push(id);
        runs.push({
          node_id: id,
          plan_node: n.id,
          element: i,
          kind: n.kind,
          queue: n.map!.concurrency <= MAX_MAP_CAP ? cappedQueue(queueFor(n)) : queueFor(n),
          needs: n.needs.map((p) => parentRun(p, i)),
          level: n.level,
        });
      }
      runs.push({
        node_id: n.id,
        plan_node: n.id,
        element: null,
        kind: 'fanin',
        queue: CONTROL_QUEUE,
        needs: elements,
        level: n.level,
      });
    } else {
      runs.push({
        node_id: n.id,
        plan_node: n.id,
        element: null,
        kind: n.kind,
        queue: queueFor(n),
        needs: n.needs.map((p) => parentRun(p, null)),
        level: n.level,
      });
    }
  }
  return runs;
}

// Resolution: what a run's parents' ends mean for it ------------------------------------------

/** A run as resolution sees it. */
export interface RunRow {
  node_id: string;
  plan_node: string;
  state: NodeState;
  needs: string[];
  /** A branch, switch or guardrail's chosen children (plan ids), once it completed. */
  chosen: string[] | null;
}

/** What a parent's end means for one child: done (it may run), skip, or open (not ended yet). */
export type Edge = 'done' | 'skip' | 'open';

/** The children a branch-like node chooses among. */
export function targetsOf(n: PlanNode): Set<string> {
  const out = new Set<string>(n.otherwise ?? []);
  for (const p of n.branch?.paths ?? []) for (const t of p.to) out.add(t);
  for (const t of Object.values(n.switch?.cases ?? {})) for (const x of t) out.add(x);
  for (const t of [...(n.guardrail?.pass ?? []), ...(n.guardrail?.fail ?? [])]) out.add(t);
  return out;
}

export function edge(plan: Plan, parent: RunRow, child: RunRow): Edge {
  const p = plan.byId.get(parent.plan_node)!;
  switch (parent.state) {
    case 'completed':
      if (parent.chosen && parent.node_id === parent.plan_node && targetsOf(p).has(child.plan_node))
        return parent.chosen.includes(child.plan_node) ? 'done' : 'skip';
      return 'done';
    case 'failed':
      return p.onFailure === 'continue' ? 'done' : 'skip';
    case 'skipped':
    case 'cancelled':
      return 'skip';
    default:
      return 'open';
  }
}

/** Whether a blocked run may now run, must be skipped, or waits. */
export function decide(
  plan: Plan,
  child: RunRow,
  rows: ReadonlyMap<string, RunRow>,
): 'ready' | 'skip' | 'wait' {
  const edges = child.needs.map((p) => edge(plan, rows.get(p)!, child));
  const done = edges.filter((e) => e === 'done').length;
  const open = edges.filter((e) => e === 'open').length;
  const skip = edges.length - done - open;
  const m = child.node_id === child.plan_node ? plan.byId.get(child.plan_node)!.merge : undefined;
  if (!m) {
    if (skip > 0) return 'skip';
    return open === 0 ? 'ready' : 'wait';
  }
  if (m.wait === 'any') return done >= 1 ? 'ready' : open === 0 ? 'skip' : 'wait';
  if (m.wait === 'n') {
    const counted = done + (m.skipped === 'count' ? skip : 0);
    if (counted >= m.n) return 'ready';
    return counted + open < m.n ? 'skip' : 'wait';
  }
  // all: every parent ended; skipped parents ignored (one must have completed) or counted.
  if (open > 0) return 'wait';
  return done > 0 || (m.skipped === 'count' && skip > 0) ? 'ready' : 'skip';
}

// References --------------------------------------------------------------------------------

/** What references read: the run's fields, `input`, the nodes' outputs, a map's `item`/`page`. */
export interface RunContext {
  dag_id: string;
  asset_key: string | null;
  ref_id: string | null;
  ref_type: string | null;
  pages: number | null;
  input: Record<string, unknown>;
  nodes: Record<string, { output?: unknown; error?: unknown; state?: string }>;
  item?: unknown;
  page?: number;
}

/** Plan nodes whose outputs a node's references read. */
export function referencedNodes(n: PlanNode): Set<string> {
  const out = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === 'string') {
      if (v.startsWith('$.nodes.')) {
        const id = jsonPathSteps(v)[1];
        if (typeof id === 'string') out.add(id);
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        visit(k);
        visit(x);
      }
    }
  };
  visit(n.parameters);
  visit(n.docs);
  visit(n.map?.over);
  visit(n.switch?.field);
  visit(n.guardrail?.input);
  visit(n.branch?.paths.map((p) => p.when));
  return out;
}

/** `value` with each `$.…` string replaced by what it reads (null where nothing); `$$.` is a literal `$.`. */
export function resolveRefs(value: unknown, ctx: RunContext): unknown {
  if (typeof value === 'string') {
    if (value.startsWith('$$.')) return value.slice(1);
    if (value.startsWith('$.')) return valueAt(ctx, value).value ?? null;
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, ctx));
  if (isPlainObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v, ctx)]));
  return value;
}
