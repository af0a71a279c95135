import { describe, expect, it } from 'vitest';
import { createProgram } from './index.js';

describe('marie program', () => {
  it('has the executor and ping commands with their flags', () => {
    const program = createProgram();
    expect(program.commands.map((c) => c.name())).toEqual([
      'executor',
      'flow',
      'gateway',
      'export',
      'ping',
      'post',
      'ocr',
      'worker',
      'job',
      'dag',
      'plan',
      'new',
    ]);
    const dag = program.commands.find((c) => c.name() === 'dag')!;
    expect(dag.commands.map((c) => c.name())).toEqual([
      'submit',
      'status',
      'list',
      'wait',
      'retry',
      'cancel',
    ]);
    const plan = program.commands.find((c) => c.name() === 'plan')!;
    expect(plan.commands.map((c) => c.name())).toEqual(['validate', 'show']);
    const job = program.commands.find((c) => c.name() === 'job')!;
    expect(job.commands.map((c) => c.name())).toEqual([
      'submit',
      'status',
      'list',
      'cancel',
      'wait',
    ]);
    const worker = program.commands.find((c) => c.name() === 'worker')!;
    expect(worker.options.map((o) => o.long)).toEqual(
      expect.arrayContaining([
        '--target',
        '--database',
        '--queue',
        '--dag',
        '--jobs',
        '--stop-timeout',
      ]),
    );
    const executor = program.commands[0]!;
    const flags = executor.options.map((o) => o.long);
    for (const flag of [
      '--uses',
      '--uses-with',
      '--py-modules',
      '--name',
      '--host',
      '--port',
      '--protocol',
    ])
      expect(flags).toContain(flag);
    // Every serving command takes Jina's monitoring and tracing flags.
    for (const name of ['executor', 'flow', 'gateway', 'worker']) {
      const longs = program.commands.find((c) => c.name() === name)!.options.map((o) => o.long);
      for (const flag of [
        '--monitoring',
        '--port-monitoring',
        '--tracing',
        '--traces-exporter-host',
        '--traces-exporter-port',
      ])
        expect(longs, `${name} ${flag}`).toContain(flag);
    }
    // ...and the program the logging ones, which every command sees.
    expect(program.options.map((o) => o.long)).toEqual(
      expect.arrayContaining(['--log-level', '--log-format']),
    );
    const post = program.commands.find((c) => c.name() === 'post')!.options.map((o) => o.long);
    for (const flag of [
      '--data',
      '--docs',
      '--request-size',
      '--max-attempts',
      '--api-key',
      '--ca',
    ])
      expect(post).toContain(flag);
    expect(executor.getOptionValue('port')).toBeUndefined();
    expect(executor.getOptionValue('host')).toBe('0.0.0.0');
    expect(program.commands[4]!.getOptionValue('timeout')).toBe(3000);
  });
});
