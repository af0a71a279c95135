/** A problem the user can fix (bad flag, bad config): one line on stderr, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Prints one line and exits: 2 for usage and configuration errors, 1 for anything else. */
export function exitWith(command: string, err: unknown): never {
  const e = err as Error;
  const usage =
    e instanceof UsageError ||
    e?.name === 'ConfigError' ||
    (e?.name === 'MarieError' && (e as { code?: string }).code === 'invalid_argument');
  process.stderr.write(`${command}: ${(e?.message ?? String(err)).split('\n')[0]}\n`);
  process.exit(usage ? 2 : 1);
}
