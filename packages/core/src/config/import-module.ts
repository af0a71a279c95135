import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './config-error.js';

let tsEnabled: Promise<void> | undefined;

/** Lets plain Node import .ts modules by registering tsx's loader (an optional peer dependency). */
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

function isUnknownExtension(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ERR_UNKNOWN_FILE_EXTENSION';
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
    try {
      return (await import(url)) as Record<string, unknown>;
    } catch (err) {
      if (!isUnknownExtension(err) || !/\.[cm]?tsx?$/.test(file)) throw err;
      await enableTypeScript();
      // Node remembers the failed import of this URL: ask again under a fresh one.
      return (await import(`${url}?ts`)) as Record<string, unknown>;
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`${source}: module ${listed} failed to load: ${reason}`, { cause: err });
  }
}
