import { createRequire } from 'node:module';
import { registerLazyExecutor } from '@marie/core';
import { Command } from 'commander';
import { dagCommand, planCommand } from './dag-command.js';
import { executorCommand } from './executor-command.js';
import { exportCommand } from './export-command.js';
import { flowCommand, gatewayCommand } from './flow-command.js';
import { jobCommand, workerCommand } from './jobs-command.js';
import { addLoggingOptions } from './logging.js';
import { newCommand } from './new-command.js';
import { ocrCommand } from './ocr-command.js';
import { pingCommand } from './ping-command.js';
import { postCommand } from './post-command.js';

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };

// `jtype: MarieExecutor` / `--uses MarieExecutor` without py_modules: loaded only when named.
registerLazyExecutor('MarieExecutor', async () => (await import('@marie/executor')).MarieExecutor);

/** The `marie` command line. */
export function createProgram(): Command {
  const program = new Command('marie')
    .description('Marie for TypeScript: serve and call document-processing executors')
    .version(version)
    .showHelpAfterError();
  addLoggingOptions(program);
  program.addCommand(executorCommand());
  program.addCommand(flowCommand());
  program.addCommand(gatewayCommand());
  program.addCommand(exportCommand());
  program.addCommand(pingCommand());
  program.addCommand(postCommand());
  program.addCommand(ocrCommand());
  program.addCommand(workerCommand());
  program.addCommand(jobCommand());
  program.addCommand(dagCommand());
  program.addCommand(planCommand());
  program.addCommand(newCommand());
  return program;
}
