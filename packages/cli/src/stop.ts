import type { Logger } from '@marie/core';

/**
 * SIGTERM or SIGINT runs `shutdown` once, then exits 0 (1 if it failed); a second signal exits 1
 * at once. What every long-running command (`flow`, `gateway`, `worker`) does at the end.
 */
export function stopOnSignals(log: Logger, shutdown: (signal: string) => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
