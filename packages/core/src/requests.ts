import type { AnyDocType, TSchema } from '@marie/docs';
import { METADATA } from './metadata.js';

/** The fallback endpoint: what a bare `@requests` binds, and what unknown endpoints reach. */
export const DEFAULT_ENDPOINT = '/default';
/** Reserved no-op endpoint every executor answers (spec/wire.md). */
export const DRY_RUN_ENDPOINT = '_jina_dry_run_';

export interface RequestsOptions {
  /** Endpoint(s) to bind; `/default` when left out. */
  on?: string | readonly string[];
  /** Document type of the incoming docs (`DocList[InputDoc]` in Python). LegacyDocument if left out. */
  requestSchema?: AnyDocType;
  /** Document type of the returned docs; the request schema if left out. */
  responseSchema?: AnyDocType;
  /** TypeBox schema of `ctx.parameters`: validated, defaults applied. */
  parametersSchema?: TSchema;
  /** Call the method once per document: `(doc, ctx)`, returning a document or nothing. */
  single?: boolean;
  /** Let calls of a synchronous method overlap (they run one at a time otherwise). */
  allowConcurrent?: boolean;
}

export interface BatchingOptions {
  /** Flush once this many documents wait. */
  preferredBatchSize: number;
  /** Flush this long after the first document of a batch arrived. */
  timeoutMs: number;
}

export type MethodKind = 'sync' | 'async' | 'generator' | 'asyncGenerator';

/** One method's binding, as the decorators record it. */
export interface MethodBinding {
  method: string | symbol;
  kind: MethodKind;
  options: RequestsOptions;
}

interface ClassTable {
  endpoints: Map<string, MethodBinding>;
  batching: Map<string | symbol, BatchingOptions>;
}

const TABLE = Symbol('marie.endpoints');

type Metadata = Record<PropertyKey, unknown> & { [TABLE]?: ClassTable };
type AnyMethod = (this: any, ...args: any[]) => unknown;

function ownTable(context: ClassMethodDecoratorContext): ClassTable {
  const metadata = context.metadata as Metadata | undefined;
  if (!metadata) {
    throw new TypeError(
      '@requests: decorator metadata is missing; compile with standard (TC39) decorators, not experimentalDecorators',
    );
  }
  // Metadata objects inherit from the parent class's: create this class's own table.
  if (!Object.hasOwn(metadata, TABLE)) {
    metadata[TABLE] = { endpoints: new Map(), batching: new Map() };
  }
  return metadata[TABLE]!;
}

/** How a method runs, from the class of its function. */
export function methodKind(fn: unknown): MethodKind {
  switch ((fn as { constructor: { name: string } }).constructor.name) {
    case 'AsyncFunction':
      return 'async';
    case 'GeneratorFunction':
      return 'generator';
    case 'AsyncGeneratorFunction':
      return 'asyncGenerator';
    default:
      return 'sync';
  }
}

function checkContext(context: ClassMethodDecoratorContext, decorator: string): void {
  if (context.kind !== 'method' || context.static || context.private) {
    throw new TypeError(`${decorator} decorates public instance methods only`);
  }
}

function bind(options: RequestsOptions) {
  return (value: AnyMethod, context: ClassMethodDecoratorContext): void => {
    checkContext(context, '@requests');
    const on = options.on === undefined ? [DEFAULT_ENDPOINT] : [options.on].flat();
    if (on.length === 0) throw new TypeError(`@requests on ${String(context.name)}: empty \`on\``);
    const table = ownTable(context);
    const binding: MethodBinding = { method: context.name, kind: methodKind(value), options };
    for (const endpoint of on) {
      if (typeof endpoint !== 'string' || endpoint === '') {
        throw new TypeError(
          `@requests on ${String(context.name)}: endpoints are non-empty strings`,
        );
      }
      if (endpoint === DRY_RUN_ENDPOINT) {
        throw new TypeError(`@requests: ${DRY_RUN_ENDPOINT} is reserved`);
      }
      table.endpoints.set(endpoint, binding);
    }
  };
}

/**
 * Binds a method to endpoints. Bare `@requests` binds `/default`, the fallback for endpoints no
 * method is bound to; `@requests({ on: '/extract' })` or `on: ['/a', '/b']` binds those.
 *
 * The method is called as `(docs, ctx)` with a DocList and a RequestContext (`(doc, ctx)` with
 * `single: true`, and for generator methods, which mark streaming endpoints).
 */
export function requests(value: AnyMethod, context: ClassMethodDecoratorContext): void;
export function requests(
  options?: RequestsOptions,
): (value: AnyMethod, context: ClassMethodDecoratorContext) => void;
export function requests(
  valueOrOptions?: AnyMethod | RequestsOptions,
  context?: ClassMethodDecoratorContext,
): undefined | ((value: AnyMethod, context: ClassMethodDecoratorContext) => void) {
  if (typeof valueOrOptions === 'function') {
    bind({})(valueOrOptions, context!);
    return;
  }
  return bind(valueOrOptions ?? {});
}

/**
 * Collects the documents of concurrent requests to this method's endpoints into batches: one
 * queue per (endpoint, parameters); a batch goes when `preferredBatchSize` documents wait or
 * `timeoutMs` after its first arrived. The method must return as many documents as it got.
 */
export function dynamicBatching(options: BatchingOptions) {
  validateBatching(options, '@dynamicBatching');
  return (_value: AnyMethod, context: ClassMethodDecoratorContext): void => {
    checkContext(context, '@dynamicBatching');
    ownTable(context).batching.set(context.name, options);
  };
}

export function validateBatching(options: BatchingOptions, where: string): void {
  const { preferredBatchSize: size, timeoutMs } = options;
  if (!Number.isInteger(size) || size < 1) {
    throw new TypeError(`${where}: preferredBatchSize must be a positive integer, got ${size}`);
  }
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
    throw new TypeError(`${where}: timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
}

/** A class's endpoint table, inherited tables merged from the base up (a subclass binding wins). */
export interface EndpointTable {
  endpoints: Map<string, MethodBinding>;
  batching: Map<string | symbol, BatchingOptions>;
}

const resolved = new WeakMap<object, EndpointTable>();

export function endpointTableOf(cls: abstract new (...args: never[]) => unknown): EndpointTable {
  let table = resolved.get(cls);
  if (table) return table;
  const chain: ClassTable[] = [];
  for (let c: unknown = cls; typeof c === 'function'; c = Object.getPrototypeOf(c)) {
    if (!Object.hasOwn(c, METADATA)) continue;
    const metadata = (c as unknown as Record<symbol, Metadata | undefined>)[METADATA];
    if (metadata && Object.hasOwn(metadata, TABLE)) chain.unshift(metadata[TABLE]!);
  }
  table = { endpoints: new Map(), batching: new Map() };
  for (const own of chain) {
    for (const [k, v] of own.endpoints) table.endpoints.set(k, v);
    for (const [k, v] of own.batching) table.batching.set(k, v);
  }
  resolved.set(cls, table);
  return table;
}
