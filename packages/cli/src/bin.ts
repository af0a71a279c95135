#!/usr/bin/env node
import type { Command } from 'commander';
import { createProgram } from './program.js';

// Usage errors (unknown flag, missing value) exit 2, like configuration errors; --help/--version 0.
const exitCodes = (command: Command): void => {
  command.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  for (const sub of command.commands) exitCodes(sub);
};

const program = createProgram();
exitCodes(program);
await program.parseAsync(process.argv);
