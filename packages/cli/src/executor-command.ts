import { createLogger, loadExecutor, RequestHandler } from '@marie/core';
import { DEFAULT_PORT, GrpcClient, GrpcServer } from '@marie/transport-grpc';
import { Command, Option } from 'commander';
import { exitWith, UsageError } from './errors.js';
import { integer } from './parse.js';

interface ExecutorFlags {
  uses: string;
  usesWith?: string;
  usesMetas?: string;
  pyModules?: string[];
  name?: string;
  host: string;
  port: number;
  protocol: string[];
  workspace?: string;
  shardId: number;
  shards: number;
  replicas: number;
  replicaId: number;
  gracePeriod: number;
}

function json(flag: string, text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${flag}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** `marie executor`: serve one executor until SIGTERM/SIGINT. */
export function executorCommand(): Command {
  return new Command('executor')
    .description('serve an executor (a YAML config or a class name) over gRPC')
    .requiredOption(
      '--uses <config>',
      'YAML config (jtype/with/metas/py_modules) or executor class name',
    )
    .option('--uses-with <json>', 'constructor config, merged over the YAML `with:`')
    .option('--uses-metas <json>', 'metas, merged over the YAML `metas:`')
    .option('--py-modules <files...>', 'modules (.ts/.js) that define the executor class')
    .option('--name <name>', 'deployment name (routes carry it, parameters are scoped by it)')
    .option('--host <host>', 'interface to listen on', '0.0.0.0')
    .option(
      '--port <port>',
      'port to listen on; 0 picks a free one',
      integer('--port', 0),
      DEFAULT_PORT,
    )
    .addOption(new Option('--protocol <protocols...>', 'protocols to serve').default(['grpc']))
    .option('--workspace <dir>', 'workspace root of the executor')
    .option('--shard-id <n>', 'shard id', integer('--shard-id', 0), 0)
    .option('--shards <n>', 'number of shards', integer('--shards', 1), 1)
    .option('--replicas <n>', 'number of replicas', integer('--replicas', 1), 1)
    .option('--replica-id <n>', 'replica id', integer('--replica-id', 0), 0)
    .option(
      '--grace-period <ms>',
      'how long in-flight calls may finish at shutdown',
      integer('--grace-period', 0),
      10_000,
    )
    .action(async (flags: ExecutorFlags) => {
      try {
        await serve(flags);
      } catch (err) {
        exitWith('marie executor', err);
      }
    });
}

async function serve(flags: ExecutorFlags): Promise<void> {
  const unsupported = flags.protocol.filter((p) => p !== 'grpc');
  if (unsupported.length)
    throw new UsageError(`--protocol ${unsupported.join(' ')}: only grpc is served so far`);
  const metas = json('--uses-metas', flags.usesMetas);
  const runtimeArgs = {
    shardId: flags.shardId,
    shards: flags.shards,
    replicas: flags.replicas,
    replicaId: flags.replicaId,
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.workspace ? { workspace: flags.workspace } : {}),
  };
  const executor = await loadExecutor(flags.uses, {
    with: json('--uses-with', flags.usesWith),
    metas,
    runtimeArgs,
    ...(flags.pyModules ? { modules: flags.pyModules } : {}),
  });
  const log = createLogger('marie executor');
  const server = new GrpcServer(new RequestHandler(executor), {
    host: flags.host,
    port: flags.port,
  });
  let address: { host: string; port: number };
  try {
    address = await server.start();
  } catch (err) {
    await executor.close();
    throw new Error(`cannot listen on ${flags.host}:${flags.port}: ${(err as Error).message}`);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down`);
    server.shutdown(flags.gracePeriod).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // `ready` means a health check through the port answers SERVING, not merely that we bound it.
  const probeHost =
    address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  const probe = new GrpcClient({ host: probeHost, port: address.port, poolSize: 1 });
  const healthy = await probe.isReady({ timeoutMs: 5000 });
  probe.close();
  if (!healthy)
    throw new Error(
      `the server on ${address.host}:${address.port} does not answer its health check`,
    );
  process.stdout.write(`ready grpc://${address.host}:${address.port}\n`);
  log.info(
    { executor: executor.constructor.name, address: `grpc://${address.host}:${address.port}` },
    'serving',
  );
}
