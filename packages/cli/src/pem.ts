import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

/** A PEM file a flag names, read; a UsageError naming the flag when it cannot be. */
export function readPem(flag: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(err as Error).message}`);
  }
}
