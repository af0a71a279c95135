import { isPlainObject } from '@marie/docs';

/**
 * Jina's document conditions (`when:`): `{ 'tags__key': { $eq: 5 } }`, with `$eq`, `$ne`, `$gt`,
 * `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$exists`, and `$and` / `$or` lists. `__` walks into
 * nested fields (`tags__a__b`); a key written as JSONPath (`$.nodes.classify.output.kind`,
 * `$.items[0].label`, `$['odd key']`) walks objects and lists. A plain value means `$eq`.
 */
export type Condition = Record<string, unknown>;

const OPS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists']);

const STEP = /^(?:\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[(['"])(.*?)\3\])/;

/**
 * The steps of a JSONPath of plain steps (`$.a.b[0]['c d']`): names and list indexes. Anything
 * else (wildcards, filters, slices) throws a TypeError naming the path.
 */
export function jsonPathSteps(path: string): (string | number)[] {
  if (!path.startsWith('$')) throw new TypeError(`${path}: a JSONPath starts with $`);
  const steps: (string | number)[] = [];
  let rest = path.slice(1);
  while (rest) {
    const m = STEP.exec(rest);
    if (!m)
      throw new TypeError(
        `${path}: only plain steps (.name, [0], ['name']) are supported, not "${rest}"`,
      );
    steps.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[4]!));
    rest = rest.slice(m[0].length);
  }
  return steps;
}

/** The value a path reaches in `doc` (a JSONPath, or Jina's `a__b`); undefined when none. */
export function valueAt(doc: unknown, path: string): { found: boolean; value: unknown } {
  let cur: unknown = doc;
  for (const key of path.startsWith('$') ? jsonPathSteps(path) : path.split('__')) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur) || key >= cur.length) return { found: false, value: undefined };
      cur = cur[key];
    } else {
      if (!isPlainObject(cur) || !(key in cur)) return { found: false, value: undefined };
      cur = cur[key];
    }
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
    } else {
      if (key.startsWith('$'))
        try {
          jsonPathSteps(key);
        } catch (err) {
          throw new TypeError(`${where}: ${(err as Error).message}`);
        }
      if (!isPlainObject(spec)) continue;
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
