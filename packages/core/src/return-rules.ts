import { DocList, isPlainObject } from '@marie/docs';
import { unencodable } from './encodable.js';
import type { Endpoint } from './endpoints.js';
import { ErrorCode, MarieError } from './errors.js';

// What an endpoint method may return (spec/wire.md), and the errors that name the method when it
// returns something else. `owner` is the executor's class name.

/** A DocList or an array replaces the documents, nothing keeps them, a plain object is a result. */
export function applyReturn(
  owner: string,
  endpoint: Endpoint,
  result: unknown,
  input: DocList<object>,
): { docs: DocList<object>; results?: unknown } {
  if (result === undefined || result === null) return { docs: input };
  if (result instanceof DocList && result.docType === endpoint.responseSchema)
    return { docs: result };
  if (Array.isArray(result))
    return { docs: new DocList(endpoint.responseSchema, result as object[], { path: 'return' }) };
  if (isPlainObject(result)) return { docs: input, results: result };
  throw badReturn(owner, endpoint, result, 'a DocList, a plain object (results) or nothing');
}

/** Refuses results the wire cannot carry (functions, BigInts, cycles...), naming where. */
export function checkEncodable(
  owner: string,
  endpoint: Endpoint,
  name: string,
  results: unknown,
): void {
  const bad = unencodable(results, `__results__.${name}`);
  if (bad) {
    throw new MarieError(
      ErrorCode.Internal,
      `${owner}.${String(endpoint.method)} returned a result that cannot be encoded: ${bad}`,
    );
  }
}

/** A method returned `value` where it must return `want`. */
export function badReturn(
  owner: string,
  endpoint: Endpoint,
  value: unknown,
  want: string,
): MarieError {
  const what =
    value === null
      ? 'null'
      : typeof value === 'object'
        ? (value.constructor?.name ?? 'object')
        : typeof value;
  return new MarieError(
    ErrorCode.Internal,
    `${owner}.${String(endpoint.method)} returned ${what}; it must return ${want}`,
  );
}
