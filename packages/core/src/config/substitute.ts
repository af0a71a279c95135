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
