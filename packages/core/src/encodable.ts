import { isPlainObject } from '@marie/docs';

/**
 * Where a value cannot travel as a google.protobuf.Value (what `parameters` are on the wire), or
 * undefined when it can: only null, booleans, numbers, strings, arrays and plain objects do.
 * Checked before an answer counts as done, so that a result the transport would fail to encode is
 * the method's failure (and a tracked job's), never a success the client never receives.
 */
export function unencodable(value: unknown, path: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'number':
      return undefined;
    case 'bigint':
      return `${path} is a BigInt (${value}n); return a number or a string`;
    case 'function':
      return `${path} is a function`;
    case 'symbol':
      return `${path} is a symbol`;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = unencodable(value[i], `${path}[${i}]`);
      if (bad) return bad;
    }
    return undefined;
  }
  if (!isPlainObject(value)) {
    const kind = (value as object).constructor?.name ?? 'object';
    return `${path} is a ${kind}, not a plain object`;
  }
  for (const [k, v] of Object.entries(value)) {
    const bad = unencodable(v, `${path}.${k}`);
    if (bad) return bad;
  }
  return undefined;
}
