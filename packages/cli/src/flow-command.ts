import { createLogger } from '@marie/core';
import { loadFlow } from '@marie/flow';
import { Command } from 'commander';
import { exitWith } from './errors.js';
import { integer } from './parse.js';

/** `marie flow --uses flow.yml`: the gateway and every deployment, until SIGTERM/SIGINT. */
export function flowCommand(): Command {
  return new Command('flow')
    .description(
      'run a Flow (jtype: Flow YAML): every executor as supervised processes behind one gateway',
    )
    .requiredOption('--uses <flow.yml>', 'the Flow YAML')
    .option(
      '--grace-period <ms>',
      'how long in-flight calls may finish at shutdown',
      integer('--grace-period', 0),
      10_000,
    )
    .action(async (flags: { uses: string; gracePeriod: number }) => {
      const log = createLogger('marie flow');
      let flow: Awaited<ReturnType<typeof loadFlow>>;
      try {
        flow = await loadFlow(flags.uses);
        await flow.start();
      } catch (err) {
        exitWith('marie flow', err);
      }
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        log.info(`${signal}: shutting down`);
        flow.close().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      for (const address of flow.addresses) process.stdout.write(`ready ${address}\n`);
    });
}
