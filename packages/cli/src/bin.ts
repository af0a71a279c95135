#!/usr/bin/env node
import type { Command } from 'commander';
import { baseProgram, LEAN_COMMANDS } from './base-program.js';

// Usage errors (unknown flag, missing value) exit 2, like configuration errors; --help/--version 0.
const exitCodes = (command: Command): void => {
  command.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  for (const sub of command.commands) exitCodes(sub);
};

// A reader that stops early (`marie ocr scan.pdf | head`) closes the pipe: that ends the command
// quietly, as it does for cat or grep, instead of an EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// `marie executor ...` (and ping, post) load their own module only; anything else (a command
// given after a global option, --help, --version) the whole program.
const name = process.argv[2] ?? '';
const program = Object.hasOwn(LEAN_COMMANDS, name)
  ? baseProgram().addCommand(await LEAN_COMMANDS[name]!())
  : (await import('./program.js')).createProgram();
exitCodes(program);
await program.parseAsync(process.argv);
