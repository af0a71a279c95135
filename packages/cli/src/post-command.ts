import { readFileSync } from 'node:fs';
import { Client } from '@marie/client';
import { Command } from 'commander';
import { addClientOptions, type ClientFlags, clientOptionsFrom } from './client-flags.js';
import { exitWith, UsageError } from './errors.js';
import { addOperationsOptions, type OperationsFlags, startOperations } from './operations.js';
import { integer, jsonObject } from './parse.js';

interface PostFlags extends ClientFlags, OperationsFlags {
  data?: string;
  docs?: string;
  parameters?: string;
  requestSize: number;
  targetExecutor?: string;
  timeout?: number;
  maxAttempts: number;
  initialBackoff?: number;
  maxBackoff?: number;
  backoffMultiplier?: string;
  progress?: boolean;
  results?: boolean;
}

/**
 * `marie post ADDRESS ENDPOINT`: sends documents (`--data` JSON, or `--docs` JSON Lines) to a
 * runtime over any protocol, `--request-size` per request, and prints the answer's documents as
 * JSON lines (or, with `--results`, each answer's `parameters.__results__`). A progress bar on
 * stderr when it is a terminal (or with `--progress`).
 */
export function postCommand(): Command {
  const command = new Command('post')
    .description('send documents to an endpoint of a runtime and print the answer')
    .argument('<address>', 'grpc://host:port, http://host:port or ws://host:port (s for TLS)')
    .argument('<endpoint>', 'the endpoint, e.g. /extract')
    .option('--data <json>', 'documents as JSON: an array of objects, or one object')
    .option('--docs <file>', 'documents as JSON Lines, one per line (- reads stdin)')
    .option('--parameters <json>', 'parameters as a JSON object')
    .option('--request-size <n>', 'documents per request', integer('--request-size', 1), 100)
    .option('--target-executor <regex>', 'executors of a Flow that should handle it')
    .option('--timeout <ms>', 'deadline of the whole call', integer('--timeout', 1))
    .option(
      '--max-attempts <n>',
      'attempts when the runtime cannot be reached',
      integer('--max-attempts', 1),
      1,
    )
    .option(
      '--initial-backoff <ms>',
      'wait before the first retry (500)',
      integer('--initial-backoff', 0),
    )
    .option(
      '--max-backoff <ms>',
      'longest wait between attempts (2000)',
      integer('--max-backoff', 0),
    )
    .option('--backoff-multiplier <x>', 'growth of the wait per attempt (1.5)')
    .option('--progress', 'a progress bar on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'no progress bar')
    .option('--results', "print each answer's parameters.__results__ instead of its documents");
  addClientOptions(command);
  return addOperationsOptions(command).action(
    async (address: string, endpoint: string, flags: PostFlags) => {
      const ops = flags.tracing
        ? await startOperations({ ...flags, monitoring: false }, 'client')
        : undefined;
      try {
        const docs = documents(flags);
        const multiplier =
          flags.backoffMultiplier === undefined ? undefined : Number(flags.backoffMultiplier);
        if (multiplier !== undefined && !(Number.isFinite(multiplier) && multiplier >= 1))
          throw new UsageError('--backoff-multiplier must be a number >= 1');
        const client = new Client({ host: address, ...clientOptionsFrom(flags) });
        try {
          const answers: unknown[] = [];
          const out = await client.post(endpoint, docs, {
            parameters: jsonObject('--parameters', flags.parameters),
            requestSize: flags.requestSize,
            maxAttempts: flags.maxAttempts,
            showProgress: flags.progress ?? process.stderr.isTTY === true,
            ...(flags.targetExecutor ? { targetExecutor: flags.targetExecutor } : {}),
            ...(flags.timeout ? { timeoutMs: flags.timeout } : {}),
            ...(flags.initialBackoff !== undefined
              ? { initialBackoffMs: flags.initialBackoff }
              : {}),
            ...(flags.maxBackoff !== undefined ? { maxBackoffMs: flags.maxBackoff } : {}),
            ...(multiplier !== undefined ? { backoffMultiplier: multiplier } : {}),
            ...(flags.results
              ? { onDone: (r) => answers.push(r.parameters.__results__ ?? {}) }
              : {}),
          });
          const lines = flags.results ? answers : [...out];
          process.stdout.write(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
        } finally {
          client.close();
        }
      } catch (err) {
        await ops?.close();
        exitWith('marie post', err);
      }
      await ops?.close();
      process.exit(0);
    },
  );
}

function documents(flags: PostFlags): object[] {
  if (flags.data !== undefined && flags.docs !== undefined)
    throw new UsageError('give --data or --docs, not both');
  if (flags.data !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(flags.data);
    } catch (err) {
      throw new UsageError(`--data: not valid JSON (${(err as Error).message})`);
    }
    const list = Array.isArray(value) ? value : [value];
    const bad = list.findIndex((d) => typeof d !== 'object' || d === null || Array.isArray(d));
    if (bad >= 0) throw new UsageError(`--data: document ${bad} is not a JSON object`);
    return list as object[];
  }
  if (flags.docs === undefined) return [];
  let text: string;
  try {
    text = readFileSync(flags.docs === '-' ? 0 : flags.docs, 'utf8');
  } catch (err) {
    throw new UsageError(`--docs: cannot read ${flags.docs}: ${(err as Error).message}`);
  }
  return text
    .split('\n')
    .map((line, i) => [line.trim(), i + 1] as const)
    .filter(([line]) => line !== '')
    .map(([line, n]) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new UsageError(`--docs: line ${n}: not valid JSON (${(err as Error).message})`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new UsageError(`--docs: line ${n}: not a JSON object`);
      return value as object;
    });
}
