import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from '@marie/client';
import {
  createLogger,
  type DataRequest,
  freshImporter,
  type HandleOptions,
  HotReloader,
  loadExecutor,
  type Processor,
  RequestHandler,
} from '@marie/core';
import { DEFAULT_PORT, GrpcServer } from '@marie/transport-grpc';
import { HttpServer } from '@marie/transport-http';
import { Command, Option } from 'commander';
import { exitWith, UsageError } from './errors.js';
import { keepHeapHeadroom } from './heap-headroom.js';
import { addOperationsOptions, type OperationsFlags, startOperations } from './operations.js';
import { integer, jsonObject as json } from './parse.js';
import { addServerOptions, type ServerFlags, serverOptionsFrom } from './server-flags.js';

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
      new Option('--protocol <protocols...>', 'protocols to serve: grpc, http, websocket').default([
        'grpc',
      ]),
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

const PROTOCOLS: Record<string, 'grpc' | 'http' | 'websocket'> = {
  grpc: 'grpc',
  http: 'http',
  websocket: 'websocket',
  ws: 'websocket',
};
const SCHEME = { grpc: 'grpc', http: 'http', websocket: 'ws' } as const;

interface Served {
  protocol: 'grpc' | 'http' | 'websocket';
  shutdown: (graceMs: number) => Promise<void>;
  address: { host: string; port: number };
}

async function serve(flags: ExecutorFlags): Promise<void> {
  keepHeapHeadroom();
  const unknown = flags.protocol.filter((p) => !(p in PROTOCOLS));
  if (unknown.length)
    throw new UsageError(`--protocol ${unknown.join(' ')}: unknown (grpc, http, websocket)`);
  const protocols = [...new Set(flags.protocol.map((p) => PROTOCOLS[p]!))];
  let ports = (flags.port ?? [String(DEFAULT_PORT)]).map((p) => {
    try {
      return integer('--port', 0)(p);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  if (ports.length === 1 && protocols.length > 1) {
    if (ports[0] !== 0)
      throw new UsageError(
        `--port: give one port per protocol (${protocols.length} protocols, 1 port)`,
      );
    ports = protocols.map(() => 0);
  }
  if (ports.length !== protocols.length)
    throw new UsageError(`--port: ${ports.length} ports for ${protocols.length} protocols`);

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
  const exitOn = new Set(flags.exitOnExceptions ?? []);
  let fatal: ((name: string) => void) | undefined;
  let terminated: ((reason: string, code: number) => void) | undefined;
  const watch = (res: DataRequest<any>) => {
    const name = res.header.status?.exception?.name;
    if (name && exitOn.has(name)) fatal?.(name);
    return res;
  };
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
    // An executor's fatal failure (a lost GPU) stops the runtime (below).
    executor.onTerminate((reason, code) => terminated?.(reason, code));
    // With --exit-on-exceptions the answer goes out first; then the runtime stops with exit code 1.
    const handler = exitOn.size
      ? new (class extends RequestHandler {
          override async handle(req: DataRequest<any>, options?: HandleOptions) {
            return watch(await super.handle(req, options));
          }
          override async handleMany(reqs: readonly DataRequest<any>[], options?: HandleOptions) {
            return watch(await super.handleMany(reqs, options));
          }
        })(executor, handlerOptions)
      : new RequestHandler(executor, handlerOptions);
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
  const handler: Processor = flags.reload
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
  // --monitoring: every server serves the measured handler; /metrics on its own port.
  const ops = startOperations(flags, handler.name);
  const servedHandler = ops.metrics ? ops.metrics.instrument(handler) : handler;
  const served: Served[] = [];
  try {
    for (const [i, protocol] of protocols.entries()) {
      if (protocol === 'grpc') {
        const server = new GrpcServer(servedHandler, {
          host: flags.host,
          port: ports[i]!,
          ...security,
        });
        served.push({
          protocol,
          shutdown: (ms) => server.shutdown(ms),
          address: await server.start(),
        });
      } else {
        const server = new HttpServer(servedHandler, {
          protocol,
          host: flags.host,
          port: ports[i]!,
          ...security,
        });
        served.push({
          protocol,
          shutdown: (ms) => server.shutdown(ms),
          address: await server.start(),
        });
      }
    }
  } catch (err) {
    await Promise.all(served.map((s) => s.shutdown(0)));
    await ops.close();
    await handler.close();
    throw new Error(`cannot listen on ${flags.host}:${ports.join('/')}: ${(err as Error).message}`);
  }

  let stopping = false;
  const stop = (signal: string, code = 0, graceMs = flags.gracePeriod) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down`);
    Promise.all(served.map((s) => s.shutdown(graceMs)))
      .then(() => handler.close())
      .then(() => ops.close())
      .then(
        () => process.exit(code),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  fatal = (name) => setTimeout(() => stop(`${name} (--exit-on-exceptions)`, 1), 50).unref();
  // An executor's fatal failure (a lost GPU): stop taking requests, drain briefly (at most 3 s:
  // work on a lost GPU will not finish), exit with its code.
  terminated = (reason, code) => {
    log.error({ reason, exitCode: code }, 'executor terminated');
    stop(`terminate: ${reason}`, code, Math.min(flags.gracePeriod, 3000));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Started by a supervisor (Deployment) with an IPC channel: when the supervisor dies, even by
  // SIGKILL, the channel closes and this runtime stops too, so no orphan is left behind.
  if (process.channel) {
    process.on('disconnect', () => stop('supervisor gone'));
    process.channel.unref();
  }

  // The metrics address first: a supervisor reading `ready` has it by then.
  await ops.serveMetrics(flags.host);
  // `ready` means a health check through each port answers, not merely that it is bound. (With
  // TLS the certificate may name another host, or want a client's: bound is taken as ready.)
  const secure = security.tls ? 's' : '';
  for (const s of served) {
    const host =
      s.address.host === '0.0.0.0' || s.address.host === '::' ? '127.0.0.1' : s.address.host;
    if (!security.tls) {
      const probe = new Client({
        host: `${SCHEME[s.protocol]}://${host}:${s.address.port}`,
        poolSize: 1,
      });
      const healthy = await probe.isReady({ timeoutMs: 5000 });
      probe.close();
      if (!healthy)
        throw new Error(
          `the ${s.protocol} server on ${s.address.host}:${s.address.port} does not answer its health check`,
        );
    }
    process.stdout.write(
      `ready ${SCHEME[s.protocol]}${secure}://${s.address.host}:${s.address.port}\n`,
    );
  }
  log.info({ executor: handler.kind, protocols, reload: flags.reload === true }, 'serving');
}
