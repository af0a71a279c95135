import type { Condition } from '@marie/flow';
import { type FailurePolicy, type KnownEndpoints, type Plan, parsePlan } from './plan.js';

/** What every node may say. */
export interface NodeOptions {
  needs?: string[];
  description?: string;
  on_failure?: FailurePolicy;
  retry_limit?: number;
  retry_delay?: number;
  retry_backoff?: boolean;
  timeout?: number;
}

/**
 * A plan in TypeScript: each method adds a node (checked with the rest by `build()`, which errors
 * as a YAML plan would).
 *
 *   plan('document').map('ocr', '/document/extract').executor('fields', '/fields', { needs: ['ocr'] }).build()
 */
export class PlanBuilder {
  readonly #name: string;
  readonly #version: number;
  readonly #nodes: Record<string, unknown>[] = [];

  constructor(name: string, version = 1) {
    this.#name = name;
    this.#version = version;
  }

  #add(id: string, kind: string, fields: object): this {
    this.#nodes.push({ id, kind, ...fields });
    return this;
  }

  executor(
    id: string,
    endpoint: string,
    options: NodeOptions & { parameters?: Record<string, unknown> } = {},
  ): this {
    return this.#add(id, 'executor', { endpoint, ...options });
  }

  /** One run per page of the asset (`over: 'pages'`) or per element of an upstream list. */
  map(
    id: string,
    endpoint: string,
    options: NodeOptions & {
      over?: 'pages' | `$.${string}`;
      concurrency?: number;
      parameters?: Record<string, unknown>;
    } = {},
  ): this {
    return this.#add(id, 'map', { endpoint, ...options });
  }

  branch(
    id: string,
    paths: { when: Condition; to: string[] }[],
    options: NodeOptions & { mode?: 'first_match' | 'all_match'; otherwise?: string[] } = {},
  ): this {
    return this.#add(id, 'branch', { paths, ...options });
  }

  switch(
    id: string,
    field: `$.${string}`,
    cases: Record<string, string[]>,
    options: NodeOptions & { otherwise?: string[] } = {},
  ): this {
    return this.#add(id, 'switch', { field, cases, ...options });
  }

  merge(
    id: string,
    options: NodeOptions & {
      wait?: 'all' | 'any' | 'n';
      n?: number;
      skipped?: 'ignore' | 'count';
    } = {},
  ): this {
    return this.#add(id, 'merge', options);
  }

  guardrail(
    id: string,
    input: `$.${string}`,
    check:
      | { schema: Record<string, unknown> }
      | { regex: string; flags?: string }
      | { endpoint: string; parameters?: Record<string, unknown> },
    options: NodeOptions & { pass?: string[]; fail?: string[] } = {},
  ): this {
    return this.#add(id, 'guardrail', { input, ...check, ...options });
  }

  noop(id: string, options: NodeOptions = {}): this {
    return this.#add(id, 'noop', options);
  }

  /** The plan, checked (a ConfigError names the node and key of the first fault). */
  build(options: { known?: KnownEndpoints } = {}): Plan {
    return parsePlan(
      { name: this.#name, version: this.#version, nodes: this.#nodes },
      { where: `plan ${this.#name}`, ...options },
    );
  }
}

/** Starts a plan in TypeScript. */
export function plan(name: string, version = 1): PlanBuilder {
  return new PlanBuilder(name, version);
}
