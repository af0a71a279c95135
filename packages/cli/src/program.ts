import type { Command } from 'commander';
import { baseProgram } from './base-program.js';
import { dagCommand, planCommand } from './dag-command.js';
import { executorCommand } from './executor-command.js';
import { exportCommand } from './export-command.js';
import { flowCommand, gatewayCommand } from './flow-command.js';
import { jobCommand, workerCommand } from './jobs-command.js';
import { newCommand } from './new-command.js';
import { ocrCommand } from './ocr-command.js';
import { pingCommand } from './ping-command.js';
import { postCommand } from './post-command.js';

/** The `marie` command line. */
export function createProgram(): Command {
  const program = baseProgram();
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
