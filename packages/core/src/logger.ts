import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

let root: Logger | undefined;

/**
 * The process-wide logger (pino, JSON lines on stderr so that stdout stays free for the CLI's
 * `ready` lines). The level comes from `MARIE_LOG_LEVEL` (default `info`).
 */
export function rootLogger(): Logger {
  root ??= pino(
    { name: 'marie', level: process.env.MARIE_LOG_LEVEL ?? 'info' },
    pino.destination(2),
  );
  return root;
}

/** A child logger for one component (an executor name, a transport). */
export function createLogger(component: string): Logger {
  return rootLogger().child({ component });
}
