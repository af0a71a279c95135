import { isPlainObject } from '@marie/docs';
import { ConfigError } from './config-error.js';

export interface SubstituteOptions {
  env: Record<string, string | undefined>;
  context: Record<string, unknown>;
  /** Names the file in errors and warnings. */
  source: string;
  /** Told once per old-style `${X}`/`$X` reference. */
  warn: (message: string) => void;
}

// ${{ ENV.X }} / ${{ CONTEXT.X }} (Jina 3), ${X} and $X (older Jina, deprecated), $$ for a literal $.
const PATTERN =
  /\$\$|\$\{\{\s*(ENV|CONTEXT)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Replaces variable references in every string of a parsed config. Values stay strings (a password
 * of digits stays a string). A reference to something unset is an error naming it and where it is.
 */
export function substitute(value: unknown, options: SubstituteOptions, path = ''): unknown {
  if (typeof value === 'string') return substituteString(value, options, path);
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, options, `${path}[${i}]`));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = substitute(v, options, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

function substituteString(text: string, options: SubstituteOptions, path: string): string {
  if (!text.includes('$')) return text;
  return text.replace(
    PATTERN,
    (match, scope?: string, scoped?: string, braced?: string, bare?: string) => {
      if (match === '$$') return '$';
      if (scope === 'CONTEXT') {
        const v = options.context[scoped!];
        if (v === undefined) {
          throw new ConfigError(
            `${options.source}: ${path} uses \${{ CONTEXT.${scoped} }}, but the context has no "${scoped}"`,
          );
        }
        return typeof v === 'string' ? v : JSON.stringify(v);
      }
      const name = scoped ?? braced ?? bare!;
      if (scope === undefined) {
        options.warn(
          `${options.source}: ${path} uses ${match}; write \${{ ENV.${name} }} instead (the old form is deprecated)`,
        );
      }
      const v = options.env[name];
      if (v === undefined) {
        throw new ConfigError(
          `${options.source}: ${path} uses environment variable ${name}, which is not set`,
        );
      }
      return v;
    },
  );
}

const ENV_REFERENCE = /\$\{\{\s*ENV\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The names of the `${{ ENV.X }}` references in every string of a value, in order, once each. */
export function envReferences(value: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === 'string') for (const m of v.matchAll(ENV_REFERENCE)) found.add(m[1]!);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (isPlainObject(v)) Object.values(v).forEach(walk);
  };
  walk(value);
  return [...found];
}

/**
 * An environment for `substitute` that answers every variable with its own reference
 * (`${{ ENV.X }}`): a config read this way keeps its references, for whoever runs it later with
 * the real values (`marie export`: a Secret, a ConfigMap or an env file provides them).
 */
export function keepEnvReferences(): Record<string, string> {
  return new Proxy({} as Record<string, string>, {
    get: (_target, name) => (typeof name === 'string' ? `\${{ ENV.${name} }}` : undefined),
  });
}

/**
 * `${{ ENV.X }}` references (only that form) replaced from `env` in every string of a value: what
 * a runtime does to JSON flags an exported Flow left references in. An unset variable is an
 * error naming it and `source`.
 */
export function substituteEnvReferences(
  value: unknown,
  env: Record<string, string | undefined>,
  source: string,
): unknown {
  if (typeof value === 'string')
    return value.replace(ENV_REFERENCE, (_m, name: string) => {
      const v = env[name];
      if (v === undefined)
        throw new ConfigError(`${source} uses environment variable ${name}, which is not set`);
      return v;
    });
  if (Array.isArray(value)) return value.map((v) => substituteEnvReferences(v, env, source));
  if (isPlainObject(value))
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnvReferences(v, env, source)]),
    );
  return value;
}
