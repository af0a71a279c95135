import pg from 'pg';

// SQL written with literals, for statements that travel together in one simple-protocol message
// (a run's end, a submit): the writes built by Dags, and pg-boss's own statements inlined.

/** A string (or NULL), text[] and uuid[] arrays, and jsonb, as SQL literals. */
export const L = (v: string | null) => (v === null ? 'NULL' : pg.escapeLiteral(v));
export const A = (xs: string[]) =>
  xs.length ? `ARRAY[${xs.map(L).join(', ')}]::text[]` : `'{}'::text[]`;
export const U = (xs: string[]) =>
  xs.length ? `ARRAY[${xs.map(L).join(', ')}]::uuid[]` : `'{}'::uuid[]`;
export const J = (v: unknown) => `${pg.escapeLiteral(JSON.stringify(v))}::jsonb`;

/** A literal of a pg-boss parameter: text, numbers, arrays (Postgres's array text), JSON. */
function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) return L(v.toISOString());
  if (Array.isArray(v))
    return L(
      `{${v
        .map((e) => (e === null ? 'NULL' : `"${String(e).replace(/[\\"]/g, (c) => `\\${c}`)}"`))
        .join(',')}}`,
    );
  return L(typeof v === 'string' ? v : JSON.stringify(v));
}

/**
 * A parameterized statement of pg-boss's with its parameters written in as literals, so that it
 * travels in one message with others (as insert.ts does for a job's submit). `$n` inside quotes
 * or identifiers is text, as Postgres reads it; dollar quoting is refused.
 */
export function inline(text: string, values: readonly unknown[]): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      out += c;
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      out += c;
      continue;
    }
    if (c === '$') {
      const m = /^\$(\d+)/.exec(text.slice(i));
      if (!m) throw new Error('pg-boss statement uses dollar quoting: cannot inline it');
      const k = Number(m[1]) - 1;
      if (k < 0 || k >= values.length)
        throw new Error(`pg-boss statement refers to $${m[1]}: not given`);
      out += literal(values[k]);
      i += m[0].length - 1;
      continue;
    }
    out += c;
  }
  return out;
}
