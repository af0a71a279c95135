import { Client } from '@marie/client';
import { Command } from 'commander';
import { addClientOptions, type ClientFlags, clientOptionsFrom } from './client-flags.js';
import { exitWith } from './errors.js';
import { integer } from './parse.js';

/** `marie ping`: exit 0 when the runtime's health check says SERVING, 1 otherwise. */
export function pingCommand(): Command {
  const command = new Command('ping')
    .description('check that a runtime answers its health check')
    .argument('<address>', 'grpc://host:port, http://host:port or ws://host:port (s for TLS)')
    .option(
      '--timeout <ms>',
      'give up after this many milliseconds',
      integer('--timeout', 1),
      3000,
    );
  return addClientOptions(command).action(
    async (address: string, flags: { timeout: number } & ClientFlags) => {
      let client: Client;
      try {
        client = new Client({ host: address, ...clientOptionsFrom(flags) });
      } catch (err) {
        exitWith('marie ping', err);
      }
      const ok = await client.isReady({ timeoutMs: flags.timeout });
      client.close();
      process.stdout.write(
        `${address}: ${ok ? 'SERVING' : `not serving (no answer within ${flags.timeout} ms)`}\n`,
      );
      process.exit(ok ? 0 : 1);
    },
  );
}
