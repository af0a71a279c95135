import { isPlainObject } from '@marie/docs';

/**
 * Jina's document conditions (`when:`): `{ 'tags__key': { $eq: 5 } }`, with `$eq`, `$ne`, `$gt`,
 * `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, and `$and` / `$or` lists. `__` walks into
 * nested fields (`tags__a__b`). A plain value means `$eq`.
 */
export type Condition = Record<string, unknown>;

const OPS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists']);

function valueAt(doc: unknown, path: string): { found: boolean; value: unknown } {
  let cur: unknown = doc;
  for (const key of path.split('__')) {
    if (!isPlainObject(cur) || !(key in cur)) return { found: false, value: undefined };
    cur = cur[key];
  }
  return { found: cur !== undefined && cur !== null, value: cur };
}

function test(op: string, expected: unknown, found: boolean, value: unknown): boolean {
  switch (op) {
    case '$exists':
      return found === Boolean(expected);
    case '$eq':
      return found && value === expected;
    case '$ne':
      return !found || value !== expected;
    case '$gt':
      return found && (value as number) > (expected as number);
    case '$gte':
      return found && (value as number) >= (expected as number);
    case '$lt':
      return found && (value as number) < (expected as number);
    case '$lte':
      return found && (value as number) <= (expected as number);
    case '$in':
      return found && Array.isArray(expected) && expected.includes(value);
    case '$nin':
      return !found || (Array.isArray(expected) && !expected.includes(value));
    default:
      throw new TypeError(`when: unknown operator ${op}`);
  }
}

/** Checks a condition once, so that a typo fails at Flow construction, not per document. */
export function validateCondition(condition: Condition, where = 'when'): void {
  for (const [key, spec] of Object.entries(condition)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(spec))
        throw new TypeError(`${where}.${key}: expected a list of conditions`);
      for (const [i, c] of spec.entries())
        validateCondition(c as Condition, `${where}.${key}[${i}]`);
    } else if (isPlainObject(spec)) {
      for (const op of Object.keys(spec))
        if (!OPS.has(op)) throw new TypeError(`${where}.${key}: unknown operator ${op}`);
    }
  }
}

export function matches(doc: object, condition: Condition): boolean {
  for (const [key, spec] of Object.entries(condition)) {
    if (key === '$and') {
      if (!(spec as Condition[]).every((c) => matches(doc, c))) return false;
      continue;
    }
    if (key === '$or') {
      if (!(spec as Condition[]).some((c) => matches(doc, c))) return false;
      continue;
    }
    const { found, value } = valueAt(doc, key);
    const ops = isPlainObject(spec) ? spec : { $eq: spec };
    for (const [op, expected] of Object.entries(ops))
      if (!test(op, expected, found, value)) return false;
  }
  return true;
}
