import { checkLogLevel, configureLogging } from '@marie/core';
import type { Command } from 'commander';
import { exitWith, UsageError } from './errors.js';

const FORMATS = new Set(['json', 'pretty']);

/**
 * `--log-level` and `--log-format json|pretty` (or `MARIE_LOG_LEVEL` / `MARIE_LOG_FORMAT`): set
 * up before a command makes its first logger, and written back to the environment so that the
 * processes a command starts (a Flow's replicas) log the same way.
 */
export async function setUpLogging(flags: {
  logLevel?: string;
  logFormat?: string;
}): Promise<void> {
  const level = flags.logLevel ?? process.env.MARIE_LOG_LEVEL;
  const format = flags.logFormat ?? process.env.MARIE_LOG_FORMAT ?? 'json';
  if (level !== undefined) {
    try {
      checkLogLevel(level, flags.logLevel === undefined ? 'MARIE_LOG_LEVEL' : '--log-level');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    process.env.MARIE_LOG_LEVEL = level;
  }
  if (!FORMATS.has(format))
    throw new UsageError(
      `${flags.logFormat === undefined ? 'MARIE_LOG_FORMAT' : '--log-format'}: "${format}" is not json or pretty`,
    );
  process.env.MARIE_LOG_FORMAT = format;
  if (format === 'json') {
    configureLogging(level === undefined ? {} : { level });
    return;
  }
  const { PinoPretty: pretty } = await import('pino-pretty');
  configureLogging({
    ...(level === undefined ? {} : { level }),
    // Synchronous, on stderr: a line written just before exit is not lost.
    destination: pretty({
      destination: 2,
      sync: true,
      colorize: process.stderr.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
    }),
  });
}

/** The two options on the program, applied before any command's action runs. */
export function addLoggingOptions(program: Command): Command {
  return program
    .option(
      '--log-level <level>',
      'fatal, error, warn, info, debug, trace or silent (MARIE_LOG_LEVEL)',
    )
    .option('--log-format <format>', 'json (one object per line) or pretty (MARIE_LOG_FORMAT)')
    .hook('preAction', async (command) => {
      try {
        await setUpLogging(command.opts());
      } catch (err) {
        exitWith('marie', err);
      }
    });
}
