import { ConfigError } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { type Condition, jsonPathSteps, validateCondition } from '@marie/flow';

/**
 * A plan: a named, versioned DAG of nodes that a DAG run executes over one asset. Written in YAML
 * or JSON (`parsePlan`), with the builder (`plan()`), or as Marie's stored plan JSON
 * (`planFromMarie`). Every way ends in `parsePlan`'s checks: unknown keys and kinds, cycles,
 * references to outputs no upstream produces, branch targets that are not children; errors name
 * the plan, the node and the key.
 */
export const NODE_KINDS = [
  'executor',
  'map',
  'branch',
  'switch',
  'merge',
  'guardrail',
  'noop',
] as const;
export type NodeKind = (typeof NODE_KINDS)[number];
/** Kinds the DAG worker evaluates itself, without an executor's slot. */
export const CONTROL_KINDS: ReadonlySet<NodeKind> = new Set(['branch', 'switch', 'merge', 'noop']);

export const FAILURE_POLICIES = ['fail_dag', 'skip_dependents', 'continue'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** `executor://path` (Marie's way: that executor's endpoint) or `/path` (the Flow's). */
export interface Endpoint {
  raw: string;
  executor: string | null;
  path: string;
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  limit: number;
  /** Seconds before a retry. */
  delay: number;
  backoff: boolean;
}

export interface PlanNode {
  id: string;
  kind: NodeKind;
  needs: string[];
  /** executor, map, and a guardrail judged by an endpoint. */
  endpoint?: Endpoint;
  /** Values written `$.…` are references (`$.input.x`, `$.nodes.ocr.output`, `$.page`). */
  parameters: Record<string, unknown>;
  /**
   * What an executor is sent as documents: a reference to an upstream list (`$.nodes.x.output.docs`);
   * by default the asset (`{asset_key}`, one page of it in a map over pages).
   */
  docs?: string;
  onFailure: FailurePolicy;
  retry: RetryPolicy;
  /** Seconds a run may take before it is retried or failed. */
  timeout: number;
  map?: { over: string; concurrency: number };
  branch?: { mode: 'first_match' | 'all_match'; paths: { when: Condition; to: string[] }[] };
  switch?: { field: string; cases: Record<string, string[]> };
  merge?: { wait: 'all' | 'any' | 'n'; n: number; skipped: 'ignore' | 'count' };
  guardrail?: {
    input: string;
    check:
      | { schema: Record<string, unknown> }
      | { regex: string; flags: string }
      | { endpoint: Endpoint };
    pass: string[];
    fail: string[];
  };
  /** Branch, switch, guardrail: the children taken when nothing matches. */
  otherwise?: string[];
  description?: string;
  /** Depth from the roots (the longest path), computed. */
  level: number;
}

export interface Plan {
  name: string;
  version: number;
  description?: string;
  /** In topological order (parents before children). */
  nodes: PlanNode[];
  byId: ReadonlyMap<string, PlanNode>;
  /** The plan as written (our shape), stored with each DAG run. */
  source: Record<string, unknown>;
}

/** What the Flow serves, for checking endpoints at load; absent: endpoints are not checked. */
export interface KnownEndpoints {
  /** Executor name -> its endpoints (empty: any). */
  executors: ReadonlyMap<string, ReadonlySet<string>>;
  /** Endpoints of the Flow as a whole (its gateway's). */
  flow?: ReadonlySet<string>;
}

export const PLAN_DEFAULTS = {
  retry_limit: 2,
  retry_delay: 2,
  retry_backoff: true,
  on_failure: 'fail_dag' as FailurePolicy,
  timeout: 900,
  concurrency: 8,
};

const NODE_KEYS: Record<NodeKind | 'common', readonly string[]> = {
  common: [
    'id',
    'kind',
    'needs',
    'description',
    'on_failure',
    'retry_limit',
    'retry_delay',
    'retry_backoff',
    'timeout',
  ],
  executor: ['endpoint', 'parameters', 'docs'],
  map: ['endpoint', 'parameters', 'docs', 'over', 'concurrency'],
  branch: ['mode', 'paths', 'otherwise'],
  switch: ['field', 'cases', 'otherwise'],
  merge: ['wait', 'n', 'skipped'],
  guardrail: ['input', 'schema', 'regex', 'flags', 'endpoint', 'parameters', 'pass', 'fail'],
  noop: [],
};
const PLAN_KEYS = new Set(['name', 'version', 'description', 'defaults', 'nodes']);
const DEFAULT_KEYS = new Set([
  'retry_limit',
  'retry_delay',
  'retry_backoff',
  'on_failure',
  'timeout',
  'concurrency',
]);
const ID = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

/** Reference roots a parameter may name: `$.input…`, `$.nodes.<id>…`, and the run's fields. */
const ROOTS = new Set(['input', 'nodes', 'asset_key', 'ref_id', 'ref_type', 'dag_id', 'pages']);
const MAP_ROOTS = new Set(['item', 'page']);

/** Parses `executor://path` or `/path`. */
export function parseEndpoint(raw: unknown, at: string): Endpoint {
  if (typeof raw !== 'string' || raw === '')
    throw new ConfigError(`${at}: expected an endpoint (executor://path or /path)`);
  const m = /^([A-Za-z0-9_-]+):\/\/(\/?[A-Za-z0-9_./-]*)$/.exec(raw);
  if (m) return { raw, executor: m[1]!, path: `/${m[2]!.replace(/^\/+/, '')}` };
  if (/^\/[A-Za-z0-9_./-]*$/.test(raw)) return { raw, executor: null, path: raw };
  throw new ConfigError(
    `${at}: "${raw}" is not an endpoint (executor://path, e.g. extract_executor://document/extract, or /path)`,
  );
}

/**
 * A plan document checked and resolved. `where` names the source in errors (a file, `jobs.plans`);
 * `known`, when given, checks every endpoint against what the Flow serves.
 */
export function parsePlan(
  raw: unknown,
  options: { where?: string; known?: KnownEndpoints } = {},
): Plan {
  const where0 = options.where ?? 'plan';
  if (!isPlainObject(raw)) throw new ConfigError(`${where0}: expected a mapping`);
  if (Array.isArray(raw.nodes) && raw.nodes.some((n) => isPlainObject(n) && 'task_id' in n))
    return planFromMarie(raw, options);
  const name = raw.name;
  if (typeof name !== 'string' || !NAME.test(name))
    throw new ConfigError(
      `${where0}.name: expected a plan name (letters, digits, _ . -), got ${JSON.stringify(name)}`,
    );
  const where = `plan ${name}`;
  for (const k of Object.keys(raw))
    if (!PLAN_KEYS.has(k))
      throw new ConfigError(`${where}: ${k}: unknown key (known: ${[...PLAN_KEYS].join(', ')})`);
  const version = raw.version ?? 1;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > 1e6)
    throw new ConfigError(`${where}: version: expected a whole number from 1`);
  const defaults = { ...PLAN_DEFAULTS };
  if (raw.defaults !== undefined) {
    if (!isPlainObject(raw.defaults))
      throw new ConfigError(`${where}: defaults: expected a mapping`);
    for (const [k, v] of Object.entries(raw.defaults)) {
      if (!DEFAULT_KEYS.has(k))
        throw new ConfigError(
          `${where}: defaults.${k}: unknown key (known: ${[...DEFAULT_KEYS].join(', ')})`,
        );
      (defaults as Record<string, unknown>)[k] = v;
    }
    checkCommon(defaults, `${where}: defaults`);
  }
  // Nodes: a list of {id, ...} or a mapping id -> node.
  let entries: [string, unknown][];
  if (Array.isArray(raw.nodes)) {
    entries = raw.nodes.map((n, i) => {
      if (!isPlainObject(n)) throw new ConfigError(`${where}: nodes[${i}]: expected a mapping`);
      if (typeof n.id !== 'string')
        throw new ConfigError(`${where}: nodes[${i}].id: expected the node's id`);
      return [n.id, n];
    });
  } else if (isPlainObject(raw.nodes)) {
    entries = Object.entries(raw.nodes).map(([id, n]) => [
      id,
      isPlainObject(n) ? { ...n, id: n.id ?? id } : n,
    ]);
  } else throw new ConfigError(`${where}: nodes: expected a list or a mapping of nodes`);
  if (entries.length === 0)
    throw new ConfigError(`${where}: nodes: a plan needs at least one node`);
  if (entries.length > 500) throw new ConfigError(`${where}: nodes: at most 500 nodes`);
  const nodes = new Map<string, PlanNode>();
  for (const [id, n] of entries) {
    if (!ID.test(id))
      throw new ConfigError(
        `${where}: node "${id}": an id is a letter or _ then letters, digits, _ or - (64 at most)`,
      );
    if (nodes.has(id)) throw new ConfigError(`${where}: node ${id}: defined twice`);
    nodes.set(id, parseNode(n, `${where}: node ${id}`, defaults));
  }
  const plan = resolve(name, version, nodes, where, options.known);
  if (typeof raw.description === 'string') plan.description = raw.description;
  plan.source = JSON.parse(JSON.stringify(raw));
  return plan;
}

function checkCommon(d: Record<string, unknown>, at: string): void {
  const int = (k: string, max: number) => {
    const v = d[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max))
      throw new ConfigError(`${at}.${k}: expected a whole number 0-${max}`);
  };
  int('retry_limit', 100);
  int('retry_delay', 86_400);
  int('concurrency', 10_000);
  if (
    d.timeout !== undefined &&
    (typeof d.timeout !== 'number' ||
      !Number.isInteger(d.timeout) ||
      d.timeout < 1 ||
      d.timeout > 86_400)
  )
    throw new ConfigError(`${at}.timeout: expected whole seconds 1-86400`);
  if (d.retry_backoff !== undefined && typeof d.retry_backoff !== 'boolean')
    throw new ConfigError(`${at}.retry_backoff: expected true or false`);
  if (d.on_failure !== undefined && !FAILURE_POLICIES.includes(d.on_failure as FailurePolicy))
    throw new ConfigError(
      `${at}.on_failure: ${JSON.stringify(d.on_failure)} is not one of ${FAILURE_POLICIES.join(', ')}`,
    );
}

function ids(v: unknown, at: string): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))
    throw new ConfigError(`${at}: expected a node id or a list of node ids`);
  if (new Set(list).size !== list.length) throw new ConfigError(`${at}: a node is named twice`);
  return list as string[];
}

function parseNode(raw: unknown, at: string, defaults: typeof PLAN_DEFAULTS): PlanNode {
  if (!isPlainObject(raw)) throw new ConfigError(`${at}: expected a mapping`);
  const kind = (raw.kind ?? (raw.endpoint !== undefined ? 'executor' : 'noop')) as NodeKind;
  if (!NODE_KINDS.includes(kind))
    throw new ConfigError(
      `${at}: kind: ${JSON.stringify(raw.kind)} is not one of ${NODE_KINDS.join(', ')}`,
    );
  const allowed = new Set([...NODE_KEYS.common, ...NODE_KEYS[kind]]);
  for (const k of Object.keys(raw))
    if (!allowed.has(k))
      throw new ConfigError(
        `${at}: ${k}: unknown key for a ${kind} node (known: ${[...allowed].join(', ')})`,
      );
  checkCommon(raw, at);
  const node: PlanNode = {
    id: raw.id as string,
    kind,
    needs: ids(raw.needs, `${at}: needs`),
    parameters: {},
    onFailure: (raw.on_failure as FailurePolicy) ?? defaults.on_failure,
    retry: {
      limit: (raw.retry_limit as number) ?? defaults.retry_limit,
      delay: (raw.retry_delay as number) ?? defaults.retry_delay,
      backoff: (raw.retry_backoff as boolean) ?? defaults.retry_backoff,
    },
    timeout: (raw.timeout as number) ?? defaults.timeout,
    level: 0,
  };
  if (typeof raw.description === 'string') node.description = raw.description;
  if (raw.parameters !== undefined) {
    if (!isPlainObject(raw.parameters))
      throw new ConfigError(`${at}: parameters: expected a mapping`);
    node.parameters = raw.parameters;
  }
  const targets = (k: string) => ids(raw[k], `${at}: ${k}`);
  if (raw.docs !== undefined) {
    if (typeof raw.docs !== 'string' || !raw.docs.startsWith('$.'))
      throw new ConfigError(
        `${at}: docs: expected a reference to an upstream list ($.nodes.<id>.output…)`,
      );
    node.docs = raw.docs;
  }
  switch (kind) {
    case 'executor':
      node.endpoint = parseEndpoint(raw.endpoint, `${at}: endpoint`);
      break;
    case 'map': {
      node.endpoint = parseEndpoint(raw.endpoint, `${at}: endpoint`);
      const over = raw.over ?? 'pages';
      if (typeof over !== 'string' || (over !== 'pages' && !over.startsWith('$.')))
        throw new ConfigError(
          `${at}: over: expected pages or a reference to an upstream list ($.nodes.<id>.output…)`,
        );
      node.map = { over, concurrency: (raw.concurrency as number) ?? defaults.concurrency };
      if (node.map.concurrency < 1) throw new ConfigError(`${at}: concurrency: at least 1`);
      break;
    }
    case 'branch': {
      const mode = raw.mode ?? 'first_match';
      if (mode !== 'first_match' && mode !== 'all_match')
        throw new ConfigError(`${at}: mode: expected first_match or all_match`);
      if (!Array.isArray(raw.paths) || raw.paths.length === 0)
        throw new ConfigError(`${at}: paths: expected a list of {when, to}`);
      node.branch = {
        mode,
        paths: raw.paths.map((p, i) => {
          const pat = `${at}: paths[${i}]`;
          if (!isPlainObject(p) || !isPlainObject(p.when))
            throw new ConfigError(`${pat}.when: expected a condition (a mapping)`);
          for (const k of Object.keys(p))
            if (k !== 'when' && k !== 'to') throw new ConfigError(`${pat}.${k}: unknown key`);
          try {
            validateCondition(p.when, `${pat}.when`);
          } catch (err) {
            throw new ConfigError((err as Error).message);
          }
          const to = ids(p.to, `${pat}.to`);
          if (to.length === 0) throw new ConfigError(`${pat}.to: name at least one node`);
          return { when: p.when, to };
        }),
      };
      node.otherwise = targets('otherwise');
      break;
    }
    case 'switch': {
      if (typeof raw.field !== 'string' || !raw.field.startsWith('$.'))
        throw new ConfigError(`${at}: field: expected a reference ($.nodes.<id>.output…)`);
      if (!isPlainObject(raw.cases) || Object.keys(raw.cases).length === 0)
        throw new ConfigError(`${at}: cases: expected a mapping value -> node ids`);
      node.switch = {
        field: raw.field,
        cases: Object.fromEntries(
          Object.entries(raw.cases).map(([v, t]) => [v, ids(t, `${at}: cases.${v}`)]),
        ),
      };
      node.otherwise = targets('otherwise');
      break;
    }
    case 'merge': {
      const wait = raw.wait ?? 'all';
      if (wait !== 'all' && wait !== 'any' && wait !== 'n')
        throw new ConfigError(`${at}: wait: expected all, any or n`);
      const n = raw.n ?? 1;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
        throw new ConfigError(`${at}: n: expected a whole number from 1`);
      const skipped = raw.skipped ?? 'ignore';
      if (skipped !== 'ignore' && skipped !== 'count')
        throw new ConfigError(`${at}: skipped: expected ignore or count`);
      node.merge = { wait, n, skipped };
      break;
    }
    case 'guardrail': {
      const checks = ['schema', 'regex', 'endpoint'].filter((k) => raw[k] !== undefined);
      if (checks.length !== 1)
        throw new ConfigError(`${at}: give one check: schema, regex or endpoint`);
      if (typeof raw.input !== 'string' || !raw.input.startsWith('$.'))
        throw new ConfigError(`${at}: input: expected a reference ($.nodes.<id>.output…)`);
      let check: NonNullable<PlanNode['guardrail']>['check'];
      if (raw.schema !== undefined) {
        if (!isPlainObject(raw.schema))
          throw new ConfigError(`${at}: schema: expected a JSON Schema`);
        check = { schema: raw.schema };
      } else if (raw.regex !== undefined) {
        const flags = raw.flags ?? '';
        if (typeof raw.regex !== 'string' || typeof flags !== 'string')
          throw new ConfigError(`${at}: regex: expected a pattern (and flags) as strings`);
        try {
          new RegExp(raw.regex, flags);
        } catch (err) {
          throw new ConfigError(`${at}: regex: ${(err as Error).message}`);
        }
        check = { regex: raw.regex, flags };
      } else {
        check = { endpoint: parseEndpoint(raw.endpoint, `${at}: endpoint`) };
        node.endpoint = check.endpoint;
      }
      node.guardrail = { input: raw.input, check, pass: targets('pass'), fail: targets('fail') };
      break;
    }
    case 'noop':
      break;
  }
  return node;
}

/** Roots of every reference (`$.…` string) under `value`, with where it is. */
function referencesIn(value: unknown, at: string, out: { path: string; at: string }[] = []) {
  if (typeof value === 'string') {
    if (value.startsWith('$.')) out.push({ path: value, at });
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) referencesIn(v, `${at}[${i}]`, out);
  } else if (isPlainObject(value))
    for (const [k, v] of Object.entries(value)) referencesIn(v, `${at}.${k}`, out);
  return out;
}

function resolve(
  name: string,
  version: number,
  nodes: Map<string, PlanNode>,
  where: string,
  known: KnownEndpoints | undefined,
): Plan {
  for (const n of nodes.values())
    for (const p of n.needs)
      if (!nodes.has(p))
        throw new ConfigError(`${where}: node ${n.id}: needs: no node "${p}" in the plan`);
  // Kahn's order; what is left is on a cycle.
  const indegree = new Map([...nodes.values()].map((n) => [n.id, n.needs.length]));
  const children = new Map<string, string[]>([...nodes.keys()].map((id) => [id, []]));
  for (const n of nodes.values()) for (const p of n.needs) children.get(p)!.push(n.id);
  const order: PlanNode[] = [];
  const queue = [...nodes.values()].filter((n) => n.needs.length === 0);
  while (queue.length) {
    const n = queue.shift()!;
    order.push(n);
    for (const c of children.get(n.id)!) {
      indegree.set(c, indegree.get(c)! - 1);
      if (indegree.get(c) === 0) queue.push(nodes.get(c)!);
    }
  }
  if (order.length !== nodes.size) {
    const left = new Set([...nodes.keys()].filter((id) => indegree.get(id)! > 0));
    // Walk parents inside what is left until a node repeats: that is the cycle.
    let cur = [...left][0]!;
    const seen: string[] = [];
    while (!seen.includes(cur)) {
      seen.push(cur);
      cur = nodes.get(cur)!.needs.find((p) => left.has(p))!;
    }
    const ring = seen.slice(seen.indexOf(cur)).reverse();
    // Told from its smallest id, so that the same cycle always reads the same.
    const start = ring.indexOf([...ring].sort()[0]!);
    const cycle = [...ring.slice(start), ...ring.slice(0, start)];
    throw new ConfigError(
      `${where}: a cycle through nodes ${[...cycle, cycle[0]].join(' -> ')} (a plan is a DAG)`,
    );
  }
  for (const n of order) n.level = Math.max(0, ...n.needs.map((p) => nodes.get(p)!.level + 1));
  // Ancestors, for references.
  const ancestors = new Map<string, Set<string>>();
  for (const n of order) {
    const a = new Set<string>();
    for (const p of n.needs) {
      a.add(p);
      for (const x of ancestors.get(p)!) a.add(x);
    }
    ancestors.set(n.id, a);
  }
  for (const n of order) {
    const at = `${where}: node ${n.id}`;
    // Branch-like targets must be this node's children.
    const targetLists: [string, string[]][] = [];
    n.branch?.paths.forEach((p, i) => {
      targetLists.push([`paths[${i}].to`, p.to]);
    });
    if (n.switch)
      for (const [v, t] of Object.entries(n.switch.cases)) targetLists.push([`cases.${v}`, t]);
    if (n.guardrail) targetLists.push(['pass', n.guardrail.pass], ['fail', n.guardrail.fail]);
    if (n.otherwise) targetLists.push(['otherwise', n.otherwise]);
    for (const [key, list] of targetLists)
      for (const t of list)
        if (!nodes.get(t)?.needs.includes(n.id))
          throw new ConfigError(
            `${at}: ${key}: "${t}" is not a child of ${n.id} (a target must list ${n.id} in its needs)`,
          );
    // References: to the run's fields, or to outputs of ancestors.
    const refs = referencesIn(n.parameters, 'parameters');
    if (n.map && n.map.over !== 'pages') refs.push({ path: n.map.over, at: 'over' });
    if (n.switch) refs.push({ path: n.switch.field, at: 'field' });
    if (n.docs) refs.push({ path: n.docs, at: 'docs' });
    if (n.guardrail) refs.push({ path: n.guardrail.input, at: 'input' });
    n.branch?.paths.forEach((p, i) => {
      for (const k of conditionKeys(p.when)) refs.push({ path: k, at: `paths[${i}].when` });
    });
    for (const r of refs) checkReference(r.path, `${at}: ${r.at}`, n, ancestors.get(n.id)!);
    if (known && n.endpoint) checkEndpoint(n.endpoint, `${at}: endpoint`, known);
  }
  return {
    name,
    version,
    nodes: order,
    byId: new Map(order.map((n) => [n.id, n])),
    source: {},
  };
}

function conditionKeys(c: Condition): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(c)) {
    if (k === '$and' || k === '$or')
      for (const sub of v as Condition[]) out.push(...conditionKeys(sub));
    else if (k.startsWith('$.')) out.push(k);
  }
  return out;
}

function checkReference(path: string, at: string, node: PlanNode, ancestors: Set<string>): void {
  let steps: (string | number)[];
  try {
    steps = jsonPathSteps(path);
  } catch (err) {
    throw new ConfigError(`${at}: ${(err as Error).message}`);
  }
  const root = steps[0];
  if (typeof root !== 'string' || !(ROOTS.has(root) || MAP_ROOTS.has(root)))
    throw new ConfigError(
      `${at}: ${path}: unknown root (known: ${[...ROOTS, ...MAP_ROOTS].map((r) => `$.${r}`).join(', ')})`,
    );
  if (MAP_ROOTS.has(root) && node.kind !== 'map')
    throw new ConfigError(`${at}: ${path}: $.${root} exists only inside a map node`);
  if (root === 'nodes') {
    const id = steps[1];
    if (typeof id !== 'string')
      throw new ConfigError(`${at}: ${path}: name a node ($.nodes.<id>.output…)`);
    if (!ancestors.has(id))
      throw new ConfigError(
        `${at}: ${path}: no upstream node "${id}" produces this (it must be among ${node.id}'s ancestors${ancestors.size ? `: ${[...ancestors].join(', ')}` : ''})`,
      );
    const what = steps[2];
    if (what !== undefined && what !== 'output' && what !== 'error' && what !== 'state')
      throw new ConfigError(`${at}: ${path}: a node gives output, error or state, not "${what}"`);
  }
}

function checkEndpoint(e: Endpoint, at: string, known: KnownEndpoints): void {
  if (e.executor === null) {
    if (known.flow && known.flow.size && !known.flow.has(e.path))
      throw new ConfigError(
        `${at}: ${e.raw}: the Flow serves no such endpoint (it serves ${[...known.flow].join(', ')})`,
      );
    return;
  }
  const ends = known.executors.get(e.executor);
  if (!ends)
    throw new ConfigError(
      `${at}: ${e.raw}: no executor "${e.executor}" in the Flow (it has ${[...known.executors.keys()].join(', ') || 'none'})`,
    );
  if (ends.size && !ends.has(e.path) && !ends.has('/default'))
    throw new ConfigError(
      `${at}: ${e.raw}: executor ${e.executor} has no endpoint ${e.path} (it has ${[...ends].join(', ')})`,
    );
}

// Marie's stored plan JSON ----------------------------------------------------------------------

const MARIE_TYPES = new Set(['EXTRACTOR', 'SEGMENTER', 'COMPUTE', 'MERGER', 'BRANCH', 'SWITCH']);
const MARIE_OPS: Record<string, string> = {
  '==': '$eq',
  eq: '$eq',
  equals: '$eq',
  '!=': '$ne',
  ne: '$ne',
  not_equals: '$ne',
  '>': '$gt',
  gt: '$gt',
  '>=': '$gte',
  gte: '$gte',
  '<': '$lt',
  lt: '$lt',
  '<=': '$lte',
  lte: '$lte',
  in: '$in',
  not_in: '$nin',
  exists: '$exists',
};
const MARIE_MERGE: Record<string, { wait: 'all' | 'any' | 'n'; skipped: 'ignore' | 'count' }> = {
  wait_all_active: { wait: 'all', skipped: 'ignore' },
  wait_all: { wait: 'all', skipped: 'ignore' },
  wait_any: { wait: 'any', skipped: 'ignore' },
  wait_n: { wait: 'n', skipped: 'ignore' },
  wait_all_including_skipped: { wait: 'all', skipped: 'count' },
};

/**
 * Marie's stored plan (`{nodes: [{task_id, query_str, dependencies, node_type, definition:
 * {method, endpoint, params}}]}`) as ours: EXECUTOR_ENDPOINT definitions become executor nodes,
 * NOOP noops, MERGER merges, BRANCH branches, SWITCH switches. What has no counterpart here (LLM
 * and PYTHON_FUNCTION methods, GUARDRAIL and other node types) is refused, naming node and method.
 */
export function planFromMarie(
  raw: Record<string, unknown>,
  options: { where?: string; known?: KnownEndpoints; name?: string } = {},
): Plan {
  const name =
    options.name ?? (typeof raw.name === 'string' && NAME.test(raw.name) ? raw.name : 'marie-plan');
  const where = `${options.where ?? 'plan'} (Marie plan ${name})`;
  if (!Array.isArray(raw.nodes)) throw new ConfigError(`${where}: nodes: expected a list`);
  // Marie's task ids (often `0`, `1`, or uuids) become node ids: kept where they are ids already.
  const idOf = new Map<string, string>();
  raw.nodes.forEach((n, i) => {
    const t = isPlainObject(n) ? n.task_id : undefined;
    if (typeof t !== 'string' && typeof t !== 'number')
      throw new ConfigError(`${where}: nodes[${i}].task_id: expected a task id`);
    const id = ID.test(String(t)) ? String(t) : `t_${String(t).replace(/[^A-Za-z0-9_-]/g, '_')}`;
    if (idOf.has(String(t))) throw new ConfigError(`${where}: task ${t}: defined twice`);
    idOf.set(String(t), id);
  });
  const mapId = (t: unknown, at: string): string => {
    const id = idOf.get(String(t));
    if (!id) throw new ConfigError(`${at}: no task ${JSON.stringify(t)} in the plan`);
    return id;
  };
  const nodes: Record<string, unknown>[] = [];
  for (const n of raw.nodes as Record<string, unknown>[]) {
    const at = `${where}: task ${n.task_id}`;
    const type = String(n.node_type ?? 'COMPUTE').toUpperCase();
    const def = isPlainObject(n.definition) ? n.definition : {};
    const method = String(def.method ?? 'NOOP').toUpperCase();
    const params = isPlainObject(def.params) ? def.params : {};
    const node: Record<string, unknown> = {
      id: idOf.get(String(n.task_id)),
      needs: (Array.isArray(n.dependencies) ? n.dependencies : []).map((d) =>
        mapId(d, `${at}: dependencies`),
      ),
      ...(typeof n.query_str === 'string' ? { description: n.query_str } : {}),
    };
    if (!MARIE_TYPES.has(type))
      throw new ConfigError(
        `${at}: node_type ${type} has no counterpart here (supported: ${[...MARIE_TYPES].join(', ')})`,
      );
    if (type === 'MERGER') {
      const strategy = String(
        def.merge_strategy ?? params.merge_strategy ?? 'wait_all_active',
      ).toLowerCase();
      const m = MARIE_MERGE[strategy];
      if (!m) throw new ConfigError(`${at}: merge_strategy ${strategy} is not known`);
      Object.assign(node, { kind: 'merge', wait: m.wait, skipped: m.skipped });
      const wn = def.wait_n ?? params.wait_n ?? params.n;
      if (m.wait === 'n') node.n = wn;
    } else if (type === 'BRANCH') {
      const paths = (def.paths ?? params.paths) as unknown;
      if (!Array.isArray(paths)) throw new ConfigError(`${at}: definition.paths: expected a list`);
      const mode = String(def.evaluation_mode ?? params.evaluation_mode ?? 'first_match');
      if (mode !== 'first_match' && mode !== 'all_match')
        throw new ConfigError(`${at}: evaluation_mode ${mode} has no counterpart here`);
      node.kind = 'branch';
      node.mode = mode;
      const targetsOf = (p: Record<string, unknown>, pat: string) =>
        ((p.target_node_ids ?? p.targets ?? []) as unknown[]).map((t) => mapId(t, pat));
      const conditional = paths.filter((p) => isPlainObject(p) && p.condition !== undefined);
      node.paths = conditional.map((p, i) => ({
        when: marieCondition(
          (p as Record<string, unknown>).condition,
          `${at}: paths[${i}]`,
          (node.needs as string[])[0],
        ),
        to: targetsOf(p as Record<string, unknown>, `${at}: paths[${i}]`),
      }));
      const fallback = paths.find((p) => isPlainObject(p) && p.condition === undefined);
      if (fallback)
        node.otherwise = targetsOf(fallback as Record<string, unknown>, `${at}: default path`);
    } else if (type === 'SWITCH') {
      const field = def.switch_field ?? params.switch_field ?? def.field;
      const cases = (def.cases ?? params.cases) as unknown;
      if (typeof field !== 'string') throw new ConfigError(`${at}: switch_field: expected a path`);
      if (!isPlainObject(cases)) throw new ConfigError(`${at}: cases: expected a mapping`);
      Object.assign(node, {
        kind: 'switch',
        field: upstream(field, (node.needs as string[])[0]),
        cases: Object.fromEntries(
          Object.entries(cases).map(([v, t]) => [
            v,
            (Array.isArray(t) ? t : [t]).map((x) => mapId(x, `${at}: cases.${v}`)),
          ]),
        ),
      });
      const dflt = def.default_case ?? params.default_case;
      if (dflt !== undefined)
        node.otherwise = (Array.isArray(dflt) ? dflt : [dflt]).map((x) =>
          mapId(x, `${at}: default_case`),
        );
    } else if (method === 'NOOP') {
      node.kind = 'noop';
    } else if (method === 'EXECUTOR_ENDPOINT') {
      node.kind = 'executor';
      node.endpoint = def.endpoint;
      if (Object.keys(params).length) node.parameters = params;
    } else {
      throw new ConfigError(
        `${at}: definition.method ${method} has no counterpart here (supported: EXECUTOR_ENDPOINT, NOOP)`,
      );
    }
    nodes.push(node);
  }
  return parsePlan({ name, version: Number(raw.version) || 1, nodes }, options);
}

/**
 * Marie evaluates a condition's path on upstream results: a path that does not start at one of our
 * roots reads the output of the node's first parent.
 */
function upstream(path: string, parent: string | undefined): string {
  const rel = path.replace(/^\$\.?/, '');
  const root = /^[A-Za-z_]\w*/.exec(rel)?.[0];
  if (root && (ROOTS.has(root) || MAP_ROOTS.has(root))) return `$.${rel}`;
  return parent ? `$.nodes.${parent}.output${rel ? `.${rel}` : ''}` : `$.${rel}`;
}

function marieCondition(raw: unknown, at: string, parent: string | undefined): Condition {
  if (!isPlainObject(raw)) throw new ConfigError(`${at}.condition: expected a mapping`);
  if (Array.isArray(raw.conditions)) {
    const op =
      String(raw.combinator ?? raw.operator ?? 'AND').toUpperCase() === 'OR' ? '$or' : '$and';
    return {
      [op]: raw.conditions.map((c, i) => marieCondition(c, `${at}.conditions[${i}]`, parent)),
    };
  }
  const path = raw.jsonpath ?? raw.path ?? raw.field;
  if (typeof path !== 'string') throw new ConfigError(`${at}.condition.jsonpath: expected a path`);
  const op = MARIE_OPS[String(raw.operator ?? '==').toLowerCase()];
  if (!op)
    throw new ConfigError(`${at}.condition.operator: ${String(raw.operator)} is not supported`);
  return { [upstream(path, parent)]: { [op]: raw.value ?? true } };
}

/** A plan file: YAML or JSON (our shape, or Marie's plan JSON); errors name the file. */
export async function loadPlanFile(
  path: string,
  options: { known?: KnownEndpoints } = {},
): Promise<Plan> {
  const { readFile } = await import('node:fs/promises');
  const { parse } = await import('yaml');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the plan (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return parsePlan(raw, { where: path, ...options });
}
