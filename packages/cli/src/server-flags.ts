import {
  ApiKeys,
  DEFAULT_LIMITS,
  LIMITS,
  resolveLimits,
  type ServerLimits,
  type TlsServerOptions,
} from '@marie/core';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { integer } from './parse.js';
import { readPem } from './pem.js';

/**
 * What a serving command takes for TLS and API keys; the limits come as commander names them
 * (`--request-timeout` as `requestTimeout`, see `LIMITS`).
 */
export interface ServerFlags {
  sslCertfile?: string;
  sslKeyfile?: string;
  sslClientCa?: string;
  apiKeysFile?: string;
  [limit: string]: unknown;
}

/** The commander attribute of a limit's flag: `--request-timeout` -> `requestTimeout`. */
const attribute = (flag: string) =>
  flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * `--ssl-certfile`/`--ssl-keyfile` (Jina's names) and `--ssl-client-ca` (mutual TLS);
 * `--api-keys-file` (and `$MARIE_API_KEYS`); the limits, each with its safe default.
 */
export function addServerOptions(command: Command): Command {
  command
    .option('--ssl-certfile <file>', 'serve TLS (grpcs, https, wss) with this certificate (PEM)')
    .option('--ssl-keyfile <file>', "the certificate's private key (PEM)")
    .option(
      '--ssl-client-ca <file>',
      'mutual TLS: accept only clients with a certificate this CA signed',
    )
    .option(
      '--api-keys-file <file>',
      'require one of these API keys (one per line; also $MARIE_API_KEYS, comma separated)',
    );
  // Every limit of every front door, each with its default (LIMITS: one definition for flags,
  // a Flow's `with:` and exports).
  for (const l of LIMITS)
    command.option(
      `${l.flag} <n>`,
      `${l.help} (${DEFAULT_LIMITS[l.key]})`,
      integer(l.flag, l.zeroOff ? 0 : 1),
    );
  return command;
}

export interface ServerSecurity {
  tls?: TlsServerOptions;
  apiKeys?: ApiKeys;
  /** The limits the flags set (checked); the servers' defaults hold for the rest. */
  limits: Partial<ServerLimits>;
}

/** TLS, keys and limits from the flags (and `$MARIE_API_KEYS`); errors name the flag. */
export function serverOptionsFrom(flags: ServerFlags): ServerSecurity {
  if ((flags.sslCertfile === undefined) !== (flags.sslKeyfile === undefined))
    throw new UsageError('--ssl-certfile and --ssl-keyfile go together');
  if (flags.sslClientCa !== undefined && flags.sslCertfile === undefined)
    throw new UsageError(
      '--ssl-client-ca needs --ssl-certfile and --ssl-keyfile (mutual TLS is TLS)',
    );
  const cert = readPem('--ssl-certfile', flags.sslCertfile);
  const key = readPem('--ssl-keyfile', flags.sslKeyfile);
  const clientCa = readPem('--ssl-client-ca', flags.sslClientCa);
  let apiKeys: ApiKeys | undefined;
  try {
    apiKeys = ApiKeys.from({ env: process.env.MARIE_API_KEYS, file: flags.apiKeysFile });
  } catch (err) {
    throw new UsageError(`--api-keys-file: ${(err as Error).message}`);
  }
  if (flags.apiKeysFile && !apiKeys)
    throw new UsageError(`--api-keys-file: ${flags.apiKeysFile} holds no key`);
  const limits: Partial<ServerLimits> = {};
  for (const l of LIMITS) {
    const value = flags[attribute(l.flag)];
    if (typeof value === 'number') limits[l.key] = value;
  }
  resolveLimits(limits);
  return {
    ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}),
    ...(apiKeys ? { apiKeys } : {}),
    limits,
  };
}
