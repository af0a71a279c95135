import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isPlainObject } from '@marie/docs';
import { LineCounter, parseDocument } from 'yaml';
import { resolveEndpoints } from '../endpoints.js';
import {
  type Executor,
  type ExecutorArgs,
  type ExecutorClass,
  isExecutorClass,
  type Metas,
  RESERVED_ARGS,
  type RuntimeArgs,
  receivedKeys,
  trackedConfigs,
} from '../executor.js';
import { createLogger } from '../logger.js';
import type { BatchingOptions } from '../requests.js';
import { ConfigError } from './config-error.js';
import { importModule } from './import-module.js';
import { executorsIn, loadLazyExecutor, registeredExecutors } from './registry.js';
import { substitute } from './substitute.js';

export interface LoadExecutorOptions {
  /** Merged over the config's `with:`. */
  with?: Record<string, unknown>;
  /** Merged over the config's `metas:`. */
  metas?: Partial<Metas>;
  runtimeArgs?: Partial<RuntimeArgs>;
  /** Values for `${{ CONTEXT.X }}`. */
  context?: Record<string, unknown>;
  /** Values for `${{ ENV.X }}`, `${X}`, `$X`; `process.env` unless given. */
  env?: Record<string, string | undefined>;
  /** Executor classes `jtype` may name, beside registered ones and the loaded modules' exports. */
  classes?: Iterable<ExecutorClass> | Record<string, ExecutorClass>;
  /** Where relative module paths start; the YAML file's folder, or the working directory. */
  baseDir?: string;
  /** More modules to import (resolved against `baseDir`), as `--py-modules` gives them. */
  modules?: readonly string[];
  /** Receives warnings (deprecated `${X}` forms, unknown keys); logged at warn level unless given. */
  warn?: (message: string) => void;
  /**
   * Imports a listed module (an absolute path); Node's `import()` (through tsx for .ts) unless
   * given. A hot reload passes one that loads the module and its imports afresh.
   */
  importer?: (file: string) => Promise<Record<string, unknown>>;
}

const KNOWN_KEYS = new Set([
  'jtype',
  'with',
  'metas',
  'py_modules',
  'modules',
  'requests',
  'dynamic_batching',
]);

/**
 * A ready executor instance from a YAML config file (or a class name): `jtype`, `with`, `metas`,
 * `py_modules`/`modules`, `requests`, `dynamic_batching`, with `${{ ENV.X }}`/`${{ CONTEXT.X }}`
 * substitution and YAML anchors and merge keys. Throws a ConfigError naming the file and the cause.
 */
export async function loadExecutor(
  uses: string,
  options: LoadExecutorOptions = {},
): Promise<Executor> {
  if (!/\.ya?ml$/i.test(uses))
    return executorFromConfig({ jtype: uses }, { ...options, source: uses });
  const { value, file } = await readYamlFile(uses);
  return executorFromConfig(value, { baseDir: dirname(file), ...options, source: uses });
}

/** Reads and parses a YAML config file; an unreadable file or broken YAML is a ConfigError naming it. */
export async function readYamlFile(path: string): Promise<{ value: unknown; file: string }> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the config (${(err as NodeJS.ErrnoException).code ?? err})`,
      { cause: err },
    );
  }
  return { value: parseYaml(text, path), file };
}

/** Parses YAML 1.1-style configs (merge keys `<<:` on); syntax errors name line and column. */
export function parseYaml(text: string, source: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    merge: true,
    prettyErrors: false,
    uniqueKeys: true,
    lineCounter: lines,
  });
  const error = doc.errors[0];
  if (error) {
    const pos = lines.linePos(error.pos[0]);
    const where = ` at line ${pos.line}, column ${pos.col}`;
    throw new ConfigError(`${source}: YAML syntax error${where}: ${error.message.split('\n')[0]}`);
  }
  return doc.toJS({ maxAliasCount: 1000 });
}

/** An executor from an already parsed config object. */
export async function executorFromConfig(
  raw: unknown,
  options: LoadExecutorOptions & { source?: string } = {},
): Promise<Executor> {
  const source = options.source ?? 'config';
  const warn = options.warn ?? ((m: string) => createLogger('config').warn(m));
  if (!isPlainObject(raw))
    throw new ConfigError(`${source}: expected a mapping with a "jtype" key`);
  const warned = new Set<string>();
  const config = substitute(raw, {
    env: options.env ?? process.env,
    context: options.context ?? {},
    source,
    warn: (m) => {
      if (!warned.has(m)) warn(m);
      warned.add(m);
    },
  }) as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!KNOWN_KEYS.has(key))
      warn(`${source}: unknown key "${key}" ignored (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const jtype = config.jtype;
  if (typeof jtype !== 'string' || jtype === '')
    throw new ConfigError(`${source}: "jtype" must name an executor class`);
  const withArgs = objectAt(config, 'with', source);
  const metas = objectAt(config, 'metas', source);

  const baseDir = options.baseDir ?? process.cwd();
  const modules = [
    ...listAt(config, 'py_modules', source),
    ...listAt(config, 'modules', source),
    ...listAt(metas, 'py_modules', source),
    ...(options.modules ?? []),
  ];
  const found = new Map<string, ExecutorClass>();
  for (const m of modules) {
    for (const [name, cls] of executorsIn(
      await importModule(resolve(baseDir, m), m, source, options.importer),
    ))
      found.set(name, cls);
  }
  // A class the CLI registered lazily (MarieExecutor) loads only when a config names it.
  if (!found.has(jtype) && !registeredExecutors().has(jtype)) await loadLazyExecutor(jtype);
  const cls = pickClass(jtype, options.classes, found, source);

  const args: ExecutorArgs = {
    metas: { ...(metas as Partial<Metas>), modules, ...options.metas },
    runtimeArgs: { ...options.runtimeArgs },
  };
  delete (args.metas as Record<string, unknown>).py_modules;
  const requests = objectAt(config, 'requests', source);
  if (Object.keys(requests).length) args.requests = requests as Record<string, string>;
  const batching = objectAt(config, 'dynamic_batching', source);
  if (Object.keys(batching).length) args.dynamicBatching = batchingFrom(batching, source);

  const executor = construct(cls, { ...withArgs, ...options.with }, args, source);
  try {
    resolveEndpoints(executor);
  } catch (err) {
    await executor.close();
    throw new ConfigError(`${source}: ${(err as Error).message}`, { cause: err });
  }
  return executor;
}

function pickClass(
  jtype: string,
  classes: LoadExecutorOptions['classes'],
  found: Map<string, ExecutorClass>,
  source: string,
): ExecutorClass {
  const given = new Map<string, ExecutorClass>();
  if (classes) {
    const entries =
      Symbol.iterator in classes
        ? [...(classes as Iterable<ExecutorClass>)].map((c) => [c.name, c] as const)
        : Object.entries(classes);
    for (const [name, cls] of entries) if (isExecutorClass(cls)) given.set(name, cls);
  }
  const cls = given.get(jtype) ?? found.get(jtype) ?? registeredExecutors().get(jtype);
  if (cls) return cls;
  const known = [
    ...new Set([...given.keys(), ...found.keys(), ...registeredExecutors().keys()]),
  ].sort();
  throw new ConfigError(
    `${source}: unknown jtype "${jtype}"; executor classes found: ${known.length ? known.join(', ') : 'none (list the module defining it under py_modules)'}`,
  );
}

/**
 * Constructs the class with `with` plus the base arguments, watching which `with` keys it reads. A
 * key nobody read, or one the class passed on to Executor's constructor untouched, is one the class
 * does not take: an error, as Python's `__init__` would raise for an unexpected keyword.
 */
function construct(
  cls: ExecutorClass,
  withArgs: Record<string, unknown>,
  base: ExecutorArgs,
  source: string,
): Executor {
  for (const key of RESERVED_ARGS) {
    if (key in withArgs)
      throw new ConfigError(`${source}: with.${key} is reserved; set it at the top level`);
  }
  const named = new Set<string>();
  const spread = new Set<string>();
  let described: string | symbol | undefined;
  const target = { ...withArgs, ...base };
  const config = new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string') (key === described ? spread : named).add(key);
      described = undefined;
      return Reflect.get(t, key, receiver);
    },
    has(t, key) {
      if (typeof key === 'string') named.add(key);
      return Reflect.has(t, key);
    },
    // Object spread reads a key's descriptor, then its value: that is a copy, not a use.
    getOwnPropertyDescriptor(t, key) {
      described = key;
      return Reflect.getOwnPropertyDescriptor(t, key);
    },
  });
  trackedConfigs.add(config);
  let executor: Executor;
  try {
    executor = new cls(config);
  } catch (err) {
    throw new ConfigError(`${source}: ${cls.name} constructor failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const received = receivedKeys.get(executor);
  const toBase = received === 'all' ? undefined : new Set(received);
  const unknown = Object.keys(withArgs).filter(
    (k) => !named.has(k) && (toBase === undefined || toBase.has(k) || !spread.has(k)),
  );
  if (unknown.length) {
    const takes = [...named].filter((k) => !RESERVED_ARGS.includes(k));
    void executor.close();
    throw new ConfigError(
      `${source}: ${cls.name} does not take ${unknown.map((k) => `"${k}"`).join(', ')} (under with:); it takes: ${takes.length ? takes.join(', ') : 'no configuration'}`,
    );
  }
  return executor;
}

function objectAt(
  obj: Record<string, unknown>,
  key: string,
  source: string,
): Record<string, unknown> {
  const v = obj[key];
  if (v === undefined || v === null) return {};
  if (!isPlainObject(v)) throw new ConfigError(`${source}: "${key}" must be a mapping`);
  return v;
}

function listAt(obj: Record<string, unknown>, key: string, source: string): string[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((m) => typeof m === 'string'))
    throw new ConfigError(`${source}: "${key}" must list module paths`);
  return list as string[];
}

function batchingFrom(
  raw: Record<string, unknown>,
  source: string,
): Record<string, BatchingOptions> {
  const out: Record<string, BatchingOptions> = {};
  for (const [endpoint, v] of Object.entries(raw)) {
    if (!isPlainObject(v))
      throw new ConfigError(`${source}: dynamic_batching.${endpoint} must be a mapping`);
    const size = v.preferred_batch_size ?? v.preferredBatchSize;
    // Jina's `timeout` is in milliseconds, and 10 s when left out.
    const timeout = v.timeout ?? v.timeoutMs ?? 10_000;
    out[endpoint] = { preferredBatchSize: Number(size), timeoutMs: Number(timeout) };
  }
  return out;
}
