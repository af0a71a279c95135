import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './config-error.js';

let tsEnabled: Promise<void> | undefined;

/**
 * Registers tsx's loader (an optional peer dependency) before the first .ts module is imported.
 * Node 22.18+ and 24 strip types from .ts files by themselves, but stop at decorators ("Invalid or
 * unexpected token"), and every executor has them: tsx must take .ts files first, not after a
 * failure (Node caches a module that failed to parse under its URL).
 */
function enableTypeScript(): Promise<void> {
  tsEnabled ??= import('tsx/esm/api').then(
    (api: { register: () => unknown }) => {
      api.register();
    },
    (err: unknown) => {
      tsEnabled = undefined;
      throw new Error(
        `loading TypeScript modules needs the "tsx" package (npm install tsx): ${(err as Error).message}`,
      );
    },
  );
  return tsEnabled;
}

/** Imports a module a config lists (`py_modules`/`modules`); errors name the module and the config. */
export async function importModule(
  file: string,
  listed: string,
  source: string,
): Promise<Record<string, unknown>> {
  if (/\.py$/i.test(file)) {
    throw new ConfigError(
      `${source}: module ${listed} is a Python file; list the .ts/.js module that defines the executor`,
    );
  }
  if (!existsSync(file))
    throw new ConfigError(`${source}: module ${listed} not found (looked for ${file})`);
  const url = pathToFileURL(file).href;
  try {
    if (/\.[cm]?tsx?$/.test(file)) await enableTypeScript();
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`${source}: module ${listed} failed to load: ${reason}`, { cause: err });
  }
}
