import { substituteEnvReferences } from '@marie/core';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

/** A commander parser for integer flags with a lower bound. */
export function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/**
 * A flag holding a JSON object; a UsageError naming the flag otherwise. `${{ ENV.X }}` in its
 * strings is replaced from the environment: an exported Flow leaves references there, for the
 * container's Secret, ConfigMap or env file to fill.
 */
export function jsonObject(flag: string, text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${flag}: expected a JSON object`);
  try {
    return substituteEnvReferences(value, process.env, flag) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
