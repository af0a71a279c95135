import type { ClientOptions } from '@marie/client';
import { type Command, Option } from 'commander';
import { UsageError } from './errors.js';
import { readPem } from './pem.js';

/** What the commands that call a runtime take to reach a TLS or keyed one. */
export interface ClientFlags {
  apiKey?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** `--api-key` (or `$MARIE_API_KEY`), `--ca`, `--cert`, `--key`. */
export function addClientOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--api-key <key>', "the runtime's API key (sent as a Bearer token)").env(
        'MARIE_API_KEY',
      ),
    )
    .option('--ca <file>', 'CA certificate (PEM) to trust for grpcs://, https://, wss://')
    .option('--cert <file>', 'client certificate (PEM), for servers that ask for one')
    .option('--key <file>', "the client certificate's private key (PEM)");
}

/** Client options from the flags, files read; errors name the flag. */
export function clientOptionsFrom(flags: ClientFlags): Partial<ClientOptions> {
  if ((flags.cert === undefined) !== (flags.key === undefined))
    throw new UsageError('--cert and --key go together (a client certificate and its key)');
  const ca = readPem('--ca', flags.ca);
  const cert = readPem('--cert', flags.cert);
  const key = readPem('--key', flags.key);
  return {
    ...(flags.apiKey ? { apiKey: flags.apiKey } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}
