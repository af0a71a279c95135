import type { Logger } from '@marie/core';

/** Stops the command for `reason`: exits with `exitCode` (0) once shutdown is done. */
export type Stop = (reason: string, options?: { exitCode?: number; graceMs?: number }) => void;

/**
 * What every long-running command (`executor`, `flow`, `gateway`, `worker`) does at the end:
 * SIGTERM or SIGINT runs `shutdown` once, then exits 0 (1 if it failed); a second signal exits 1
 * at once. Started by a supervisor with an IPC channel (a Deployment's replica), the channel
 * closing stops it too, so that no orphan outlives its supervisor, even one killed by SIGKILL.
 * Returns the stop, for the command's other reasons to stop (a fatal failure, with its exit code
 * and a shorter grace).
 */
export function stopOnSignals(
  log: Logger,
  shutdown: (reason: string, graceMs: number | undefined) => Promise<void>,
): Stop {
  let stopping = false;
  const stop: Stop = (reason, options = {}) => {
    if (stopping) {
      log.warn(`${reason} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    shutdown(reason, options.graceMs).then(
      () => process.exit(options.exitCode ?? 0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (process.channel) {
    process.on('disconnect', () => stop('supervisor gone'));
    process.channel.unref();
  }
  return stop;
}
