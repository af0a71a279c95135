import { type ExecutorClass, isExecutorClass } from '../executor.js';

const registry = new Map<string, ExecutorClass>();

/**
 * Makes an executor class known by name, for YAML `jtype:` and `marie executor --uses Name`.
 * Classes exported by the modules a config loads are found without this.
 */
export function registerExecutor(cls: ExecutorClass, name: string = cls.name): void {
  if (!isExecutorClass(cls))
    throw new TypeError(`registerExecutor: ${name} does not extend Executor`);
  registry.set(name, cls);
}

export function registeredExecutors(): ReadonlyMap<string, ExecutorClass> {
  return registry;
}

const lazy = new Map<string, () => Promise<ExecutorClass>>();

/**
 * Makes a class known by name without loading its module until a config names it (the CLI does
 * this for `MarieExecutor`, so that `jtype: MarieExecutor` works without loading GPU code always).
 */
export function registerLazyExecutor(name: string, load: () => Promise<ExecutorClass>): void {
  lazy.set(name, load);
}

/** Loads a lazily registered class, or undefined. */
export async function loadLazyExecutor(name: string): Promise<ExecutorClass | undefined> {
  const load = lazy.get(name);
  if (!load) return undefined;
  const cls = await load();
  registerExecutor(cls, name);
  return cls;
}

export function lazyExecutorNames(): string[] {
  return [...lazy.keys()];
}

/** Executor classes among a module's exports, by class name (and export name). */
export function executorsIn(mod: Record<string, unknown>): Map<string, ExecutorClass> {
  const found = new Map<string, ExecutorClass>();
  for (const [exportName, value] of Object.entries(mod)) {
    if (!isExecutorClass(value)) continue;
    found.set(value.name, value);
    if (exportName !== 'default') found.set(exportName, value);
  }
  return found;
}
