import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  createLogger,
  type DataRequest,
  DelegatingProcessor,
  freshImporter,
  type HandleOptions,
  HotReloader,
  loadExecutor,
  type Processor,
  RequestHandler,
} from '@marie/core';
import {
  parsePorts,
  parseProtocols,
  type Served,
  type ServeProtocol,
  serveProcessor,
} from '@marie/flow/serve';
import { DEFAULT_PORT } from '@marie/transport-grpc';
import { Command, Option } from 'commander';
import { exitWith } from './errors.js';
import { keepHeapHeadroom } from './heap-headroom.js';
import { addOperationsOptions, type OperationsFlags, startOperations } from './operations.js';
import { integer, jsonObject as json } from './parse.js';
import { addServerOptions, type ServerFlags, serverOptionsFrom } from './server-flags.js';
import { type Stop, stopOnSignals } from './stop.js';

interface ExecutorFlags extends OperationsFlags, ServerFlags {
  uses: string;
  usesWith?: string;
  usesMetas?: string;
  pyModules?: string[];
  name?: string;
  host: string;
  port?: string[];
  protocol: string[];
  workspace?: string;
  shardId: number;
  shards: number;
  replicas: number;
  replicaId: number;
  gracePeriod: number;
  exitOnExceptions?: string[];
  /** false with --no-reduce (commander's negated flag) */
  reduce: boolean;
  reload?: boolean;
}

/** `marie executor`: serve one executor until SIGTERM/SIGINT. */
export function executorCommand(): Command {
  const command = new Command('executor')
    .description(
      'serve an executor (a YAML config or a class name) over gRPC, HTTP and/or WebSocket',
    )
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
      '--port <ports...>',
      `one port per protocol; 0 picks a free one (default ${DEFAULT_PORT})`,
    )
    .addOption(
      new Option(
        '--protocol <protocols...>',
        'protocols to serve: grpc, http, websocket (ws)',
      ).default(['grpc']),
    )
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
    .option(
      '--exit-on-exceptions <names...>',
      'after answering one of these errors, exit (a supervisor restarts it)',
    )
    .option(
      '--no-reduce',
      'joined requests (process_data): docs is every incoming document, not merged by id',
    )
    .option(
      '--reload',
      'reload the executor when its modules or YAML change (traffic switches, the old one drains)',
    );
  addServerOptions(command);
  return addOperationsOptions(command).action(async (flags: ExecutorFlags) => {
    try {
      await serve(flags);
    } catch (err) {
      exitWith('marie executor', err);
    }
  });
}

/** Watches answers; after one carrying an error named in `names`, calls `fatal` with the name. */
class ExitOnExceptions extends DelegatingProcessor {
  readonly #names: ReadonlySet<string>;
  readonly #fatal: (name: string) => void;

  constructor(target: Processor, names: ReadonlySet<string>, fatal: (name: string) => void) {
    super(target);
    this.#names = names;
    this.#fatal = fatal;
  }

  override async handle(req: DataRequest<any>, options?: HandleOptions) {
    return this.#watch(await this.target.handle(req, options));
  }

  override async handleMany(reqs: readonly DataRequest<any>[], options?: HandleOptions) {
    return this.#watch(await this.target.handleMany(reqs, options));
  }

  #watch(res: DataRequest<any>): DataRequest<any> {
    const name = res.header.status?.exception?.name;
    if (name && this.#names.has(name)) this.#fatal(name);
    return res;
  }
}

async function serve(flags: ExecutorFlags): Promise<void> {
  keepHeapHeadroom();
  const protocols = parseProtocols(flags.protocol, '--protocol');
  const ports = parsePorts(flags.port, protocols, { where: '--port', defaultPort: DEFAULT_PORT });
  const security = serverOptionsFrom(flags);
  const metas = json('--uses-metas', flags.usesMetas);
  const runtimeArgs = {
    shardId: flags.shardId,
    shards: flags.shards,
    replicas: flags.replicas,
    replicaId: flags.replicaId,
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.workspace ? { workspace: flags.workspace } : {}),
  };
  const log = createLogger('marie executor');
  let stop: Stop | undefined;
  const handlerOptions = { noReduce: !flags.reduce };
  /** The executor, loaded (afresh, with `importer`), its handler made and opened. */
  const load = async (importer?: (file: string) => Promise<Record<string, unknown>>) => {
    const executor = await loadExecutor(flags.uses, {
      with: json('--uses-with', flags.usesWith),
      metas,
      runtimeArgs,
      ...(flags.pyModules ? { modules: flags.pyModules } : {}),
      ...(importer ? { importer } : {}),
    });
    // An executor's fatal failure (a lost GPU): stop taking requests, drain briefly (at most 3 s:
    // work on a lost GPU will not finish), exit with its code.
    executor.onTerminate((reason, code) => {
      log.error({ reason, exitCode: code }, 'executor terminated');
      stop?.(`terminate: ${reason}`, {
        exitCode: code,
        graceMs: Math.min(flags.gracePeriod, 3000),
      });
    });
    const handler = new RequestHandler(executor, handlerOptions);
    try {
      await handler.open();
    } catch (err) {
      await handler.close().catch(() => {});
      throw new Error(`${executor.constructor.name} failed to open: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return handler;
  };
  // --reload: the executor's modules (and whatever they import) and its YAML are watched; a change
  // loads a new version, switches traffic to it and drains the old one.
  const config = existsSync(flags.uses) ? resolve(flags.uses) : undefined;
  let processor: Processor = flags.reload
    ? await HotReloader.start({
        load: async () => {
          const files = new Set<string>(config ? [config] : []);
          const processor = await load(freshImporter((f) => files.add(f)));
          return { processor, files: [...files] };
        },
        onReload: ({ ok, changed }) => {
          if (ok) process.stdout.write(`reloaded ${changed.join(' ')}\n`);
        },
        logger: log,
      })
    : await load();
  // --exit-on-exceptions: the answer goes out first; then the runtime stops with exit code 1.
  const exitOn = new Set(flags.exitOnExceptions ?? []);
  if (exitOn.size)
    processor = new ExitOnExceptions(processor, exitOn, (name) =>
      setTimeout(() => stop?.(`${name} (--exit-on-exceptions)`, { exitCode: 1 }), 50).unref(),
    );
  // --monitoring: every server serves the measured processor; /metrics on its own port.
  const ops = await startOperations(flags, processor.name);
  if (ops.metrics) processor = ops.metrics.instrument(processor);
  let served: Served;
  try {
    served = await serveProcessor(processor, {
      protocol: protocols,
      port: ports,
      host: flags.host,
      ...security,
    });
  } catch (err) {
    await ops.close();
    await processor.close();
    throw err;
  }
  stop = stopOnSignals(log, async (reason, graceMs = flags.gracePeriod) => {
    log.info(`${reason}: shutting down`);
    await served.shutdown(graceMs);
    await processor.close();
    await ops.close();
  });

  // The metrics address first: a supervisor reading `ready` has it by then.
  await ops.serveMetrics(flags.host);
  // `ready` means a health check through each port answers, not merely that it is bound. (With
  // TLS the certificate may name another host, or want a client's: bound is taken as ready.)
  for (const s of served.servers) {
    if (!security.tls) {
      const host = s.host === '0.0.0.0' || s.host === '::' ? '127.0.0.1' : s.host;
      if (!(await answersHealthCheck(s.protocol, host, s.port)))
        throw new Error(
          `the ${s.protocol} server on ${s.host}:${s.port} does not answer its health check`,
        );
    }
    process.stdout.write(`ready ${s.address}\n`);
  }
  log.info({ executor: processor.kind, protocols, reload: flags.reload === true }, 'serving');
}

/**
 * Whether a server answers its health check, asked through its own transport's client: the
 * command loads no transport it does not serve (@marie/client would load them all, and a serving
 * process keeps every module it loaded in the heap its major GCs walk).
 */
async function answersHealthCheck(
  protocol: ServeProtocol,
  address: string,
  port: number,
): Promise<boolean> {
  const host = address.includes(':') ? `[${address}]` : address;
  const probe =
    protocol === 'grpc'
      ? new (await import('@marie/transport-grpc')).GrpcClient({ host, port, poolSize: 1 })
      : protocol === 'http'
        ? new (await import('@marie/transport-http')).HttpClient({ host, port, poolSize: 1 })
        : new (await import('@marie/transport-http')).WsClient({ host, port, subprotocol: 'json' });
  try {
    return await probe.isReady({ timeoutMs: 5000 });
  } finally {
    probe.close();
  }
}
