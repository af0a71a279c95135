import { Client } from '@marie/client';
import { createLogger } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { JobService, parseJobsConfig } from '@marie/jobs';
import { DagService, type DagTarget } from '@marie/pipelines';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { addClientOptions, type ClientFlags, clientOptionsFrom } from './client-flags.js';
import { exitWith, UsageError } from './errors.js';
import { addOperationsOptions, type OperationsFlags, startOperations } from './operations.js';
import { integer, jsonObject } from './parse.js';
import { stopOnSignals } from './stop.js';

interface WorkerFlags extends OperationsFlags, ClientFlags {
  target: string;
  jobs?: string;
  database?: string;
  queue?: string[];
  schema?: string;
  endpoint?: string;
  records: boolean;
  toast?: string;
  stopTimeout: number;
  dag?: string[];
}

/**
 * `marie worker`: takes jobs from Postgres (pg-boss) and runs each through a gateway (or an
 * executor) at `--target`, as many at a time per queue as asked. Prints `ready worker <id>`;
 * SIGTERM stops taking jobs, lets running ones finish (up to --stop-timeout), then exits 0.
 */
export function workerCommand(): Command {
  const command = new Command('worker')
    .description('run jobs from the job queue through a gateway or an executor')
    .requiredOption(
      '--target <address>',
      'where jobs run: a gateway or executor, grpc://host:port or http://host:port',
    )
    .option('--jobs <json>', "a Flow's jobs: section as JSON (database, queues, schema, toast...)")
    .option('--database <url>', 'the jobs Postgres (default: $MARIE_JOBS_DATABASE_URL)')
    .option('--queue <queue=concurrency...>', 'queues to take jobs from, e.g. document.extract=2')
    .option(
      '--dag <executor=slots...>',
      "run DAG nodes of these executors through --target, e.g. text-extraction=2 (adds slots to the gateway's)",
    )
    .option('--schema <name>', "pg-boss's schema (pgboss)")
    .option('--endpoint <endpoint>', 'endpoint of jobs that name none (/document/extract)')
    .option('--no-records', "do not keep Marie's job records (marie_job)")
    .option('--toast <json>', "where job events go, as an executor's toast: section")
    .option(
      '--stop-timeout <ms>',
      'at SIGTERM, how long running jobs may take to finish',
      integer('--stop-timeout', 0),
      30_000,
    )
    .option('--host <host>', 'interface of GET /metrics with --monitoring', '0.0.0.0');
  addClientOptions(command);
  return addOperationsOptions(command).action(async (flags: WorkerFlags & { host: string }) => {
    const command = 'marie worker';
    const log = createLogger(command);
    let service: JobService;
    let dags: DagService | undefined;
    let client: Client;
    let ops: Awaited<ReturnType<typeof startOperations>> | undefined;
    try {
      ops = await startOperations(flags, 'worker');
      const raw: Record<string, unknown> = { ...jsonObject('--jobs', flags.jobs), ui: false };
      if (flags.database) raw.database = flags.database;
      if (flags.queue) raw.queues = flags.queue;
      if (flags.schema) raw.schema = flags.schema;
      if (flags.endpoint) raw.endpoint = flags.endpoint;
      if (!flags.records) raw.records = false;
      if (flags.toast) raw.toast = jsonObject('--toast', flags.toast);
      const config = parseJobsConfig(raw, '--jobs');
      const dagSlots = parseDagSlots(flags.dag);
      if (Object.keys(config.queues).length === 0 && !dagSlots)
        throw new UsageError('--queue: name at least one queue (or "queues" in --jobs), or --dag');
      client = new Client({ host: flags.target });
      service = await JobService.open(config, { logger: log });
      await service.startWorkers(client);
      if (dagSlots) {
        // DAG nodes of these executors, through the same target; control runs stay with gateways.
        dags = await DagService.open(service, {
          ...(config.plans === undefined ? {} : { plans: config.plans }),
          dags: { ...(isPlainObject(config.dags) ? config.dags : {}), control: 0 },
          logger: log,
        });
        const target = {
          post: client.post.bind(client) as DagTarget['post'],
          ready: () => client.dryRun({ timeoutMs: 5000 }),
        };
        await dags.startWorkers(
          Object.fromEntries(Object.entries(dagSlots).map(([e, slots]) => [e, { target, slots }])),
        );
      }
      await ops.serveMetrics(flags.host);
    } catch (err) {
      await ops?.close().catch(() => {});
      exitWith(command, err);
    }
    stopOnSignals(log, async (signal) => {
      log.info(
        `${signal}: stopping (${service.active} jobs, ${dags?.active ?? 0} DAG nodes running)`,
      );
      await dags?.stop({ timeoutMs: flags.stopTimeout });
      await service.stop({ timeoutMs: flags.stopTimeout });
      client.close();
      await ops?.close();
    });
    process.stdout.write(
      `ready worker ${[
        ...Object.entries(service.config.queues).map(
          ([q, { concurrency }]) => `${q}=${concurrency}`,
        ),
        ...(flags.dag ?? []).map((d) => `dag.${d}`),
      ].join(' ')}\n`,
    );
  });
}

/** `--dag ocr=2 orient`: executor -> slots (1 when not given). */
function parseDagSlots(list: string[] | undefined): Record<string, number> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, number> = {};
  for (const item of list) {
    const [name, n] = item.split('=');
    if (!name || !/^[A-Za-z0-9_-]+$/.test(name))
      throw new UsageError(`--dag: "${item}" is not executor=slots (e.g. text-extraction=2)`);
    const slots = n === undefined ? 1 : Number(n);
    if (!Number.isInteger(slots) || slots < 1 || slots > 1000)
      throw new UsageError(`--dag: ${item}: slots must be a whole number 1-1000`);
    out[name] = slots;
  }
  return out;
}

interface JobFlags {
  gateway: string;
}

export const gatewayOption = () =>
  new Option('--gateway <address>', "the gateway's HTTP address")
    .env('MARIE_GATEWAY')
    .default('http://127.0.0.1:8081');

export const clientOf = (flags: JobFlags & ClientFlags) =>
  new Client({ host: flags.gateway, jobs: flags.gateway, ...clientOptionsFrom(flags) });

export const print = (value: unknown) =>
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

/** Exit status of a finished job: 0 completed, 1 anything else. */
const exitFor = (state: string) => (state === 'completed' ? 0 : 1);

/** Waits for a job with a progress bar on stderr (a terminal), then prints it as JSON. */
async function waitAndPrint(client: Client, id: string, timeoutMs?: number): Promise<number> {
  const steps = ['created', 'active', 'done'];
  const bar = process.stderr.isTTY
    ? new SingleBar({
        format: 'job {id} [{bar}] {state} · attempt {attempt} · {elapsed}s',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      })
    : undefined;
  const started = Date.now();
  bar?.start(steps.length - 1, 0, { id: id.slice(0, 8), state: 'waiting', attempt: 0, elapsed: 0 });
  const tick = setInterval(
    () => bar?.update({ elapsed: ((Date.now() - started) / 1000).toFixed(1) }),
    250,
  );
  try {
    const job = await client.waitForJob(id, {
      ...(timeoutMs ? { timeoutMs } : {}),
      onProgress: (j) => {
        const step =
          j.state === 'created' || j.state === 'retry' ? 0 : j.state === 'active' ? 1 : 2;
        bar?.update(step, {
          state: j.state,
          attempt: j.attempts,
          elapsed: ((Date.now() - started) / 1000).toFixed(1),
        });
        if (!bar) process.stderr.write(`job ${id}: ${j.state} (attempt ${j.attempts})\n`);
      },
    });
    bar?.stop();
    print(job);
    return exitFor(job.state);
  } finally {
    clearInterval(tick);
    bar?.stop();
  }
}

export const jsonFlag = (flag: string) => (value: string) => jsonObject(flag, value);

/** `marie job submit|status|list|cancel|wait`: the gateway's job API from the command line. */
export function jobCommand(): Command {
  const job = new Command('job').description(
    "submit, follow and cancel jobs on a gateway's job API",
  );
  const run =
    (fn: (flags: any, ...args: string[]) => Promise<number | undefined>) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      const flags = cmd.optsWithGlobals();
      try {
        const code = await fn(flags, ...(args.slice(0, -2) as string[]));
        process.exitCode = code ?? 0;
      } catch (err) {
        exitWith(`marie job ${cmd.name()}`, err);
      }
    };

  job
    .command('submit')
    .description('submit a job; prints {job_id, created} (with --wait, the finished job)')
    .addOption(gatewayOption())
    .option('--endpoint <endpoint>', 'the endpoint the job runs (its queue: slashes as dots)')
    .option('--queue <queue>', 'a named queue instead')
    .option('--asset-key <key>', 'the document: a path, file:// or s3:// key')
    .option('--ref-id <id>')
    .option('--ref-type <type>')
    .option('--parameters <json>', 'parameters of the request', jsonFlag('--parameters'))
    .option('--priority <n>', 'higher runs first', integer('--priority', -1_000_000))
    .option('--retry-limit <n>', 'retries after the first attempt (2)', integer('--retry-limit', 0))
    .option('--retry-delay <s>', 'seconds before a retry (2)', integer('--retry-delay', 0))
    .option('--expire-in <s>', 'seconds a run may take', integer('--expire-in', 1))
    .option('--start-after <when>', 'seconds from now, or an ISO date')
    .option('--idempotency-key <key>', 'the same key returns the same job')
    .option('--wait', 'wait for the job to end (progress bar), exit 0 only if it completed')
    .option('--timeout <ms>', 'with --wait: give up after this long', integer('--timeout', 1))
    .action(
      run(async (flags) => {
        const body: Record<string, unknown> = {};
        const keys: [string, string][] = [
          ['endpoint', 'endpoint'],
          ['queue', 'queue'],
          ['assetKey', 'asset_key'],
          ['refId', 'ref_id'],
          ['refType', 'ref_type'],
          ['parameters', 'parameters'],
          ['priority', 'priority'],
          ['retryLimit', 'retry_limit'],
          ['retryDelay', 'retry_delay'],
          ['expireIn', 'expire_in'],
          ['idempotencyKey', 'idempotency_key'],
        ];
        for (const [flag, key] of keys) if (flags[flag] !== undefined) body[key] = flags[flag];
        if (flags.startAfter !== undefined)
          body.start_after = /^\d+$/.test(flags.startAfter)
            ? Number(flags.startAfter)
            : flags.startAfter;
        const client = clientOf(flags);
        const submitted = await client.submitJob(body);
        if (!flags.wait) {
          print(submitted);
          return 0;
        }
        return waitAndPrint(client, submitted.job_id, flags.timeout);
      }),
    );

  job
    .command('status <id>')
    .description("a job's state, attempts, times, result or error")
    .addOption(gatewayOption())
    .action(
      run(async (flags, id) => {
        const j = await clientOf(flags).job(id!);
        print(j);
        return 0;
      }),
    );

  job
    .command('list')
    .description('jobs, newest first')
    .addOption(gatewayOption())
    .option('--state <state>', 'created, retry, active, completed, expired, cancelled, failed')
    .option('--queue <queue>')
    .option('--limit <n>', 'how many (50)', integer('--limit', 1))
    .option('--after <job_id>', 'the page after this job (the previous answer\'s "next")')
    .action(
      run(async (flags) => {
        const page = await clientOf(flags).jobs({
          ...(flags.state ? { state: flags.state } : {}),
          ...(flags.queue ? { queue: flags.queue } : {}),
          ...(flags.limit ? { limit: flags.limit } : {}),
          ...(flags.after ? { after: flags.after } : {}),
        });
        print(page);
        return 0;
      }),
    );

  job
    .command('cancel <id>')
    .description('cancel a job (a running one sees its signal fire)')
    .addOption(gatewayOption())
    .action(
      run(async (flags, id) => {
        print(await clientOf(flags).cancelJob(id!));
        return 0;
      }),
    );

  job
    .command('wait <id>')
    .description('wait for a job to end, with a progress bar; exit 0 only if it completed')
    .addOption(gatewayOption())
    .option('--timeout <ms>', 'give up after this long', integer('--timeout', 1))
    .action(run(async (flags, id) => waitAndPrint(clientOf(flags), id!, flags.timeout)));

  // The gateway's API key and TLS, on every subcommand.
  for (const sub of job.commands) addClientOptions(sub);
  return job;
}
