import { ErrorCode, MarieError } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import type { GatewayNode } from './gateway.js';
import { type Condition, validateCondition } from './when.js';

export const START = 'start-gateway';
export const END = 'end-gateway';

/**
 * A Flow's topology as Jina's gateway takes it (`--graph-description`, `--graph-conditions`):
 * each node lists the nodes that take its answer, from `start-gateway` to `end-gateway`. A node
 * that lists nothing is floating: it runs, and its answer goes nowhere.
 */
export interface FlowGraph {
  description: Record<string, string[]>;
  conditions: Record<string, Condition>;
}

export interface GraphNode {
  name: string;
  /** The previous non-floating node unless given; `gateway` is the client's request. */
  needs?: string | string[];
  when?: Condition;
  floating?: boolean;
}

const fail = (message: string): never => {
  throw new MarieError(ErrorCode.InvalidArgument, `flow graph: ${message}`);
};

/** The graph of executors added in order: chains by default, `needs` for joins. */
export function describeGraph(nodes: readonly GraphNode[]): FlowGraph {
  const description: Record<string, string[]> = { [START]: [] };
  const conditions: Record<string, Condition> = {};
  let previous = 'gateway';
  for (const node of nodes) {
    if (node.name === START || node.name === END || node.name === 'gateway')
      fail(`"${node.name}" is reserved`);
    if (node.name in description) fail(`two executors are named "${node.name}"`);
    const needs = node.needs === undefined ? [previous] : [node.needs].flat();
    for (const need of needs) {
      const from = need === 'gateway' ? START : need;
      if (!description[from]) fail(`"${node.name}" needs "${need}", which is not added before it`);
      description[from]!.push(node.name);
    }
    description[node.name] = [];
    if (node.when) {
      validateCondition(node.when, `${node.name}.when`);
      conditions[node.name] = node.when;
    }
    if (!node.floating) previous = node.name;
  }
  const floating = new Set(nodes.filter((n) => n.floating).map((n) => n.name));
  for (const [name, next] of Object.entries(description))
    if (name !== START && next.length === 0 && !floating.has(name)) next.push(END);
  if (nodes.length && !Object.values(description).some((next) => next.includes(END)))
    fail('every executor is floating; nothing would answer');
  return { description, conditions };
}

/** Checks a graph read from JSON (a `marie gateway` flag) and returns it typed. */
export function parseGraph(description: unknown, conditions: unknown = {}): FlowGraph {
  if (!isPlainObject(description)) fail('the description must be a JSON object');
  const d = description as Record<string, unknown>;
  if (!Array.isArray(d[START])) fail(`the description has no "${START}" list`);
  for (const [name, next] of Object.entries(d)) {
    if (!Array.isArray(next) || next.some((n) => typeof n !== 'string'))
      fail(`"${name}" must list node names`);
    for (const n of next as string[])
      if (n !== END && !(n in d)) fail(`"${name}" leads to "${n}", which is not a node`);
  }
  if (!isPlainObject(conditions)) fail('the conditions must be a JSON object');
  for (const [name, condition] of Object.entries(conditions as object)) {
    if (!(name in d)) fail(`a condition names "${name}", which is not a node`);
    validateCondition(condition as Condition, `${name}.when`);
  }
  return {
    description: d as Record<string, string[]>,
    conditions: conditions as Record<string, Condition>,
  };
}

/** For each node, the nodes it takes its input from (`gateway` for the start). */
function incoming(graph: FlowGraph): Map<string, string[]> {
  const needs = new Map<string, string[]>();
  for (const [from, next] of Object.entries(graph.description))
    for (const to of next)
      if (to !== END) needs.set(to, [...(needs.get(to) ?? []), from === START ? 'gateway' : from]);
  return needs;
}

/** The executors of a graph in an order where every node comes after those it needs. */
export function graphOrder(graph: FlowGraph, needs = incoming(graph)): string[] {
  const order: string[] = [];
  const placed = new Set(['gateway']);
  const nodes = Object.keys(graph.description).filter((n) => n !== START);
  while (order.length < nodes.length) {
    const ready = nodes.find(
      (n) => !placed.has(n) && (needs.get(n) ?? []).every((m) => placed.has(m)),
    );
    if (!ready) {
      const stuck = nodes.filter((n) => !placed.has(n));
      return fail(`no start or a cycle among ${stuck.join(', ')}`);
    }
    order.push(ready);
    placed.add(ready);
  }
  for (const n of nodes) if (!needs.has(n)) fail(`"${n}" is not reached from ${START}`);
  return order;
}

/** The nodes of a graph, in order: `needs` from the edges, floating where a node leads nowhere. */
export function graphNodes(graph: FlowGraph): Omit<GatewayNode, 'target'>[] {
  const needs = incoming(graph);
  return graphOrder(graph, needs).map((name) => {
    const next = graph.description[name]!;
    if (next.includes(END) && next.length > 1)
      fail(`"${name}" leads both to ${END} and to other nodes`);
    const when = graph.conditions[name];
    return {
      name,
      needs: needs.get(name)!,
      ...(when ? { when } : {}),
      ...(next.length === 0 ? { floating: true } : {}),
    };
  });
}
