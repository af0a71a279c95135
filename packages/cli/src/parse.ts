import { InvalidArgumentError } from 'commander';

/** A commander parser for integer flags with a lower bound. */
export function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}
