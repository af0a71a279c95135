import { ApiKeys, resolveLimits, type ServerLimits, type TlsServerOptions } from '@marie/core';
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { integer } from './parse.js';
import { readPem } from './pem.js';

/** What a serving command takes for TLS, API keys and limits. */
export interface ServerFlags {
  sslCertfile?: string;
  sslKeyfile?: string;
  sslClientCa?: string;
  apiKeysFile?: string;
  maxRequestBytes?: number;
  maxDocsPerRequest?: number;
  maxTensorElements?: number;
  requestTimeout?: number;
  maxConcurrentPerConnection?: number;
}

/**
 * `--ssl-certfile`/`--ssl-keyfile` (Jina's names) and `--ssl-client-ca` (mutual TLS);
 * `--api-keys-file` (and `$MARIE_API_KEYS`); the limits, each with its safe default.
 */
export function addServerOptions(command: Command): Command {
  return command
    .option('--ssl-certfile <file>', 'serve TLS (grpcs, https, wss) with this certificate (PEM)')
    .option('--ssl-keyfile <file>', "the certificate's private key (PEM)")
    .option(
      '--ssl-client-ca <file>',
      'mutual TLS: accept only clients with a certificate this CA signed',
    )
    .option(
      '--api-keys-file <file>',
      'require one of these API keys (one per line; also $MARIE_API_KEYS, comma separated)',
    )
    .option(
      '--max-request-bytes <n>',
      'largest request (104857600)',
      integer('--max-request-bytes', 1),
    )
    .option(
      '--max-docs-per-request <n>',
      'documents per request (10000)',
      integer('--max-docs-per-request', 1),
    )
    .option(
      '--max-tensor-elements <n>',
      'elements of one tensor (67108864)',
      integer('--max-tensor-elements', 1),
    )
    .option(
      '--request-timeout <ms>',
      'answer DEADLINE_EXCEEDED after this long (600000; 0: never)',
      integer('--request-timeout', 0),
    )
    .option(
      '--max-concurrent-per-connection <n>',
      'requests in flight per connection (100)',
      integer('--max-concurrent-per-connection', 1),
    );
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
  const limits: Partial<ServerLimits> = {
    ...(flags.maxRequestBytes !== undefined ? { maxRequestBytes: flags.maxRequestBytes } : {}),
    ...(flags.maxDocsPerRequest !== undefined
      ? { maxDocsPerRequest: flags.maxDocsPerRequest }
      : {}),
    ...(flags.maxTensorElements !== undefined
      ? { maxTensorElements: flags.maxTensorElements }
      : {}),
    ...(flags.requestTimeout !== undefined ? { requestTimeoutMs: flags.requestTimeout } : {}),
    ...(flags.maxConcurrentPerConnection !== undefined
      ? { maxConcurrentPerConnection: flags.maxConcurrentPerConnection }
      : {}),
  };
  resolveLimits(limits);
  return {
    ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}),
    ...(apiKeys ? { apiKeys } : {}),
    limits,
  };
}
