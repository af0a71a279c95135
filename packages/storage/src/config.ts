import { ConfigError } from '@marie/core';
import { isPlainObject } from '@marie/docs';

/** `storage.psql` of an executor's YAML `with:`: Marie's keys, plus `url`, pool size and `embedded`. */
export interface PsqlConfig {
  enabled: boolean;
  /** A postgres:// URL instead of hostname/port/database/username/password. */
  url?: string;
  hostname: string;
  port: number;
  database: string;
  username: string;
  password?: string;
  /** Schema of the document table (and job records). */
  schema: string;
  /** The document table (Marie: `default_table`). */
  defaultTable: string;
  /** Largest number of pooled connections (Marie's pool is 1-5). */
  poolSize: number;
  /**
   * A folder for an in-process Postgres (PGlite) instead of a server; relative to the executor's
   * workspace (`memory://` keeps nothing).
   */
  embedded?: string;
  assetTrackingEnabled: boolean;
  /** Schema of the asset tables (Marie: always `marie_scheduler`). */
  assetSchema: string;
  applicationName: string;
  /** Attempts for a transient failure (connection reset, 57P01, 40001, 53300), the first included. */
  maxAttempts: number;
}

export const PSQL_DEFAULTS = {
  hostname: 'localhost',
  port: 5432,
  database: 'postgres',
  username: 'postgres',
  schema: 'public',
  defaultTable: 'store',
  poolSize: 5,
  assetSchema: 'marie_scheduler',
  applicationName: 'marie_scheduler',
  maxAttempts: 8,
} as const;

const KEYS: Record<string, string> = {
  enabled: 'enabled',
  url: 'url',
  hostname: 'hostname',
  host: 'hostname',
  port: 'port',
  database: 'database',
  username: 'username',
  user: 'username',
  password: 'password',
  schema: 'schema',
  default_table: 'defaultTable',
  pool_size: 'poolSize',
  embedded: 'embedded',
  asset_tracking_enabled: 'assetTrackingEnabled',
  asset_schema: 'assetSchema',
  application_name: 'applicationName',
  max_attempts: 'maxAttempts',
  provider: '', // Marie's, ignored there too
};

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Reads `storage.psql`. `asset_tracking_enabled` defaults to `trackingDefault` (Marie's
 * MarieExecutor: true; its subclasses: false). Errors name the key; none of them holds the password.
 */
export function parsePsqlConfig(
  raw: unknown,
  path = 'storage.psql',
  trackingDefault = false,
): PsqlConfig {
  if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = KEYS[key];
    if (field === undefined) {
      throw new ConfigError(
        `${path}.${key}: unknown key (known: ${Object.keys(KEYS)
          .filter((k) => KEYS[k])
          .join(', ')})`,
      );
    }
    if (field && value !== undefined && value !== null) out[field] = value;
  }
  const str = (field: string, key: string) => {
    const v = out[field];
    if (v === undefined) return undefined;
    if (typeof v === 'number' && key !== 'password') return String(v);
    if (typeof v !== 'string')
      throw new ConfigError(`${path}.${key}: expected a string, got ${typeof v}`);
    return v;
  };
  const bool = (field: string, key: string, fallback: boolean) => {
    const v = out[field];
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new ConfigError(`${path}.${key}: expected true or false, got ${JSON.stringify(v)}`);
  };
  const int = (field: string, key: string, fallback: number, min: number, max: number) => {
    const v = out[field];
    if (v === undefined) return fallback;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(
        `${path}.${key}: expected an integer ${min}-${max}, got ${JSON.stringify(v)}`,
      );
    return n;
  };
  const ident = (field: string, key: string, fallback: string) => {
    const v = str(field, key) ?? fallback;
    if (!IDENTIFIER.test(v))
      throw new ConfigError(
        `${path}.${key}: "${v}" is not a plain SQL identifier (letters, digits, _)`,
      );
    return v;
  };
  const password = out.password;
  if (password !== undefined && typeof password !== 'string' && typeof password !== 'number')
    throw new ConfigError(`${path}.password: expected a string`);
  if (typeof password === 'string' && /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(password))
    throw new ConfigError(
      `${path}.password: looks like an unresolved environment variable reference`,
    );
  const url = str('url', 'url');
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError(`${path}.url: expected a postgres:// or postgresql:// URL`);
  const embedded = str('embedded', 'embedded');
  if (embedded !== undefined && url !== undefined)
    throw new ConfigError(`${path}: give url or embedded, not both`);
  const cfg: PsqlConfig = {
    enabled: bool('enabled', 'enabled', false),
    hostname: str('hostname', 'hostname') ?? PSQL_DEFAULTS.hostname,
    port: int('port', 'port', PSQL_DEFAULTS.port, 1, 65535),
    database: str('database', 'database') ?? PSQL_DEFAULTS.database,
    username: str('username', 'username') ?? PSQL_DEFAULTS.username,
    schema: ident('schema', 'schema', PSQL_DEFAULTS.schema),
    defaultTable: ident('defaultTable', 'default_table', PSQL_DEFAULTS.defaultTable),
    poolSize: int('poolSize', 'pool_size', PSQL_DEFAULTS.poolSize, 1, 1000),
    assetTrackingEnabled: bool('assetTrackingEnabled', 'asset_tracking_enabled', trackingDefault),
    assetSchema: ident('assetSchema', 'asset_schema', PSQL_DEFAULTS.assetSchema),
    applicationName: str('applicationName', 'application_name') ?? PSQL_DEFAULTS.applicationName,
    maxAttempts: int('maxAttempts', 'max_attempts', PSQL_DEFAULTS.maxAttempts, 1, 100),
  };
  if (password !== undefined) cfg.password = String(password);
  if (url !== undefined) cfg.url = url;
  if (embedded !== undefined) cfg.embedded = embedded;
  return cfg;
}

/** Where a config points, for logs and errors: `host:port/database`, never the password. */
export function describeTarget(cfg: PsqlConfig): string {
  if (cfg.embedded !== undefined) return `embedded Postgres in ${cfg.embedded}`;
  if (cfg.url !== undefined) {
    try {
      const u = new URL(cfg.url);
      return `${u.hostname || 'localhost'}:${u.port || 5432}${u.pathname || ''}`;
    } catch {
      return 'the configured url (unparseable)';
    }
  }
  return `${cfg.hostname}:${cfg.port}/${cfg.database}`;
}

/** The secrets of a config: what must never appear in a log line or an error. */
export function secretsOf(cfg: PsqlConfig): string[] {
  const out: string[] = [];
  if (cfg.password) out.push(cfg.password);
  if (cfg.url) {
    try {
      const p = new URL(cfg.url).password;
      if (p) out.push(p, decodeURIComponent(p));
    } catch {}
  }
  return out;
}
