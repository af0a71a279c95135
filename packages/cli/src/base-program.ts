import { createRequire } from 'node:module';
import { registerLazyExecutor } from '@marie/core';
import { Command } from 'commander';
import { addLoggingOptions } from './logging.js';

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };

// `jtype: MarieExecutor` / `--uses MarieExecutor` without py_modules: loaded only when named.
registerLazyExecutor('MarieExecutor', async () => (await import('@marie/executor')).MarieExecutor);

/** `marie` itself: its name, version and logging options, without any command yet. */
export function baseProgram(): Command {
  const program = new Command('marie')
    .description('Marie for TypeScript: serve and call document-processing executors')
    .version(version)
    .showHelpAfterError();
  addLoggingOptions(program);
  return program;
}

/**
 * The commands a process can start with alone, each loading only its own module: a served
 * executor (what Flows, Deployments and images start, many at once) and the calls that health
 * checks make every few seconds. The whole program loads every package (jobs, pipelines, OCR,
 * storage: a 43 MB heap against 15 for an executor's), and every full GC, which a server's
 * received messages trigger as they come, walks all of it.
 */
export const LEAN_COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  executor: async () => (await import('./executor-command.js')).executorCommand(),
  // A gateway forwards every request of a Flow: it loads jobs and pipelines only for a jobs: section.
  gateway: async () => (await import('./flow-command.js')).gatewayCommand(),
  flow: async () => (await import('./flow-command.js')).flowCommand(),
  ping: async () => (await import('./ping-command.js')).pingCommand(),
  post: async () => (await import('./post-command.js')).postCommand(),
};
