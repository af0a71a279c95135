import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
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
  importer?: (file: string) => Promise<Record<string, unknown>>,
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
    if (importer) return await importer(file);
    if (/\.[cm]?tsx?$/.test(file)) await enableTypeScript();
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`${source}: module ${listed} failed to load: ${reason}`, { cause: err });
  }
}

let generation = 0;

/**
 * A loader hook (Node's module.register, in its own thread): an import from a module loaded for
 * a reload (its URL carries `marie-reload=N` and the folder it came from) that resolves to a file
 * in that folder, outside node_modules, is loaded afresh too, under the same generation, and its
 * path reported back for watching. Everything else (@marie/core, the packages) is shared with
 * the process, so a reloaded class still extends the Executor the runtime knows.
 */
const HOOK = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const parent = context.parentURL ?? '';
  const gen = /[?&]marie-reload=(\\d+)/.exec(parent);
  if (!gen || !resolved.url.startsWith('file:')) return resolved;
  const root = decodeURIComponent(/[?&]marie-root=([^&]*)/.exec(parent)?.[1] ?? '');
  const base = resolved.url.split('?')[0];
  if (!root || !base.startsWith(root) || base.includes('/node_modules/')) return resolved;
  port.postMessage(base);
  return { ...resolved, url: base + '?marie-reload=' + gen[1] + '&marie-root=' + encodeURIComponent(root) };
}
`;

let reported: ((url: string) => void) | undefined;
let hooked = false;

function installHook(): void {
  if (hooked) return;
  hooked = true;
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (url: string) => reported?.(url));
  port1.unref();
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
    parentURL: import.meta.url,
    data: { port: port2 },
    transferList: [port2],
  });
}

/**
 * An importer that loads a module, and the modules of its own folder it imports, afresh (a new
 * generation of their URLs; the packages it imports stay shared), telling `onFile` of each file
 * of theirs, so that a hot reload can watch them.
 */
export function freshImporter(
  onFile: (file: string) => void,
): (file: string) => Promise<Record<string, unknown>> {
  return async (file) => {
    if (/\.[cm]?tsx?$/.test(file)) await enableTypeScript();
    installHook();
    onFile(file);
    reported = (url) => onFile(fileURLToPath(url));
    const root = pathToFileURL(dirname(file)).href + '/';
    const url = `${pathToFileURL(file).href}?marie-reload=${++generation}&marie-root=${encodeURIComponent(root)}`;
    const mod = (await import(url)) as Record<string, unknown>;
    // The hook reports over a port: let its last messages arrive.
    await new Promise((r) => setImmediate(r));
    return mod;
  };
}
