import { createLogger } from '@marie/core';
import { Flow, loadFlow, type Polling, parseGraph, parsePorts, parseProtocols } from '@marie/flow';
import type { JobService } from '@marie/jobs';
import type { DagService } from '@marie/pipelines';
import { DEFAULT_PORT } from '@marie/transport-grpc';
import { Command, Option } from 'commander';
import { exitWith, UsageError } from './errors.js';
import { keepHeapHeadroom } from './heap-headroom.js';
import { addOperationsOptions, type OperationsFlags, startOperations } from './operations.js';
import { integer, jsonObject } from './parse.js';
import { readPem } from './pem.js';
import { addServerOptions, type ServerFlags, serverOptionsFrom } from './server-flags.js';
import { stopOnSignals } from './stop.js';

/**
 * Starts a Flow, prints one `ready` line per gateway address, and stops it on SIGTERM/SIGINT.
 * A `jobs:` section adds the job API and `/ui` to the gateway's HTTP server, and workers that run
 * its queues' jobs through the gateway; at shutdown the workers stop first (their jobs finish),
 * then the Flow, then pg-boss.
 */
async function runFlow(
  command: string,
  make: () => Promise<Flow> | Flow,
  flags: OperationsFlags & ServerFlags & HopFlags,
): Promise<void> {
  const log = createLogger(command);
  let flow: Flow;
  let jobs: JobService | undefined;
  let dags: DagService | undefined;
  let ops: Awaited<ReturnType<typeof startOperations>> | undefined;
  try {
    keepHeapHeadroom();
    flow = await make();
    const o = flow.options;
    // TLS, keys and limits: the flags over the YAML's `with:` (which read $MARIE_API_KEYS too).
    const security = serverOptionsFrom(flags);
    if (security.tls) o.tls = security.tls;
    // $MARIE_API_KEYS is in both; a YAML's api_keys_file stays unless --api-keys-file is given.
    if (security.apiKeys && (flags.apiKeysFile || !o.apiKeys)) o.apiKeys = security.apiKeys;
    if (Object.keys(security.limits).length) o.limits = { ...o.limits, ...security.limits };
    const hop = hopOptionsFrom(flags);
    if (hop.tls) o.executorTls = hop.tls;
    if (hop.apiKey) o.executorApiKey = hop.apiKey;
    // Flags over the YAML's `with:`; the executors inherit both (Jina's Flow does the same).
    if (flags.monitoring) o.monitoring = true;
    if (flags.portMonitoring !== undefined) o.portMonitoring = flags.portMonitoring;
    if (flags.tracing) o.tracing = true;
    if (flags.tracesExporterHost) o.tracesExporterHost = flags.tracesExporterHost;
    if (flags.tracesExporterPort) o.tracesExporterPort = flags.tracesExporterPort;
    // The Flow's options carry the operations settings under the flags' names.
    ops = await startOperations(o, 'gateway');
    const metrics = ops.metrics;
    if (metrics) {
      o.instrument = (gateway) => metrics.instrument(gateway);
      o.observeHop = (node) => metrics.hop(node);
    }
    // Jobs and pipelines (pg-boss, pg) are loaded only for a Flow that has a jobs: section.
    const jobsApi = flow.options.jobs ? await import('@marie/jobs') : undefined;
    if (flow.options.jobs && jobsApi) {
      const config = jobsApi.parseJobsConfig(flow.options.jobs);
      jobs = await jobsApi.JobService.open(config, { logger: log });
      flow.options.httpPlugins = [...(flow.options.httpPlugins ?? []), ...jobs.plugins()];
      // Pipelines: plans and the DAG API beside the job API, their nodes run on the deployments.
      if (config.plans !== undefined || config.dags !== undefined) {
        const { DagService } = await import('@marie/pipelines');
        dags = await DagService.open(jobs, { plans: config.plans, dags: config.dags, logger: log });
        flow.options.httpPlugins.push(...dags.plugins());
      }
    }
    try {
      await flow.start();
      if (jobs && jobsApi) await jobs.startWorkers(jobsApi.processorTarget(flow.gateway!));
      // Plans are checked against what the Flow serves before any node is taken.
      await dags?.checkPlans(flow);
      await dags?.startWorkers(dags.flowExecutors(flow));
    } catch (err) {
      await flow.close().catch(() => {});
      throw err;
    }
    await ops.serveMetrics(flow.options.host ?? '127.0.0.1', 'gateway');
    for (const m of flow.monitoringAddresses())
      process.stdout.write(`monitoring ${m.address} ${m.label}\n`);
  } catch (err) {
    await dags?.stop({ timeoutMs: 1000 }).catch(() => {});
    await jobs?.stop({ timeoutMs: 1000 }).catch(() => {});
    await ops?.close().catch(() => {});
    exitWith(command, err);
  }
  stopOnSignals(log, async (signal) => {
    log.info(`${signal}: shutting down`);
    await jobs?.stopWorkers();
    await dags?.stopWorkers();
    await flow.close();
    await dags?.stop();
    await jobs?.stop();
    await ops?.close();
  });
  for (const address of flow.addresses) process.stdout.write(`ready ${address}\n`);
}

/** `marie flow --uses flow.yml`: the gateway and every deployment, until SIGTERM/SIGINT. */
export function flowCommand(): Command {
  const command = new Command('flow')
    .description(
      'run a Flow (jtype: Flow YAML): every executor as supervised processes behind one gateway',
    )
    .requiredOption('--uses <flow.yml>', 'the Flow YAML');
  addServerOptions(command);
  return addOperationsOptions(command).action(
    (flags: { uses: string } & OperationsFlags & ServerFlags) =>
      runFlow('marie flow', () => loadFlow(flags.uses), flags),
  );
}

interface GatewayFlags extends OperationsFlags, ServerFlags, HopFlags {
  graphDescription: string;
  graphConditions?: string;
  deploymentsAddresses: string;
  deploymentsPolling?: string;
  protocol: string[];
  port?: string[];
  host: string;
  timeoutSend?: number;
  timeoutReady: number;
  jobs?: string;
}

/**
 * `marie gateway`: a Flow's gateway alone, in front of executors that run elsewhere (the
 * containers of an exported Flow). The flags are Jina's: the graph as JSON and each node's
 * addresses.
 */
export function gatewayCommand(): Command {
  const command = new Command('gateway')
    .description('serve a gateway for executors started elsewhere (an exported Flow)')
    .requiredOption(
      '--graph-description <json>',
      'each node and the nodes that take its answer: {"start-gateway":["a"],"a":["end-gateway"]}',
    )
    .option('--graph-conditions <json>', 'when-conditions by node: {"a":{"tags__x":{"$eq":1}}}')
    .requiredOption(
      '--deployments-addresses <json>',
      'addresses by node, replicas or one list per shard: {"a":["grpc://a:8080"]}',
    )
    .option('--deployments-polling <json>', 'polling by node: {"a":"ALL"}')
    .addOption(
      new Option(
        '--protocol <protocols...>',
        'protocols to serve: grpc, http, websocket (ws)',
      ).default(['grpc']),
    )
    .option('--port <ports...>', `one port per protocol (default ${DEFAULT_PORT})`)
    .option('--host <host>', 'interface to listen on', '0.0.0.0')
    .option('--timeout-send <ms>', 'deadline of each hop', integer('--timeout-send', 1))
    .option(
      '--timeout-ready <ms>',
      'how long to wait for every executor to answer its health check',
      integer('--timeout-ready', 1),
      600_000,
    )
    .option(
      '--jobs <json>',
      'the job API, /ui and workers, as a Flow\'s jobs: section: {"database":"postgres://...","queues":{"document.extract":2}}',
    );
  addServerOptions(command);
  addHopOptions(command);
  return addOperationsOptions(command).action((flags: GatewayFlags) =>
    runFlow('marie gateway', () => gatewayFlow(flags), flags),
  );
}

function gatewayFlow(flags: GatewayFlags): Flow {
  const protocol = parseProtocols(flags.protocol, '--protocol');
  const port = parsePorts(flags.port, protocol, { where: '--port', defaultPort: DEFAULT_PORT });
  let graph: ReturnType<typeof parseGraph>;
  try {
    graph = parseGraph(
      JSON.parse(flags.graphDescription),
      jsonObject('--graph-conditions', flags.graphConditions),
    );
  } catch (err) {
    throw new UsageError(`--graph-description: ${(err as Error).message}`);
  }
  const addresses = jsonObject('--deployments-addresses', flags.deploymentsAddresses);
  for (const [name, at] of Object.entries(addresses)) {
    const list = [at].flat(2);
    if (list.length === 0 || list.some((a) => typeof a !== 'string'))
      throw new UsageError(`--deployments-addresses: "${name}" must list address strings`);
  }
  const jobs = flags.jobs === undefined ? undefined : jsonObject('--jobs', flags.jobs);
  if (jobs && !protocol.includes('http'))
    throw new UsageError('--jobs: the job API is served over HTTP; add http to --protocol');
  return Flow.fromGraph(graph, addresses as Record<string, string[]>, {
    ...(jobs ? { jobs } : {}),
    protocol,
    port,
    host: flags.host,
    polling: jsonObject('--deployments-polling', flags.deploymentsPolling) as Record<
      string,
      Polling
    >,
    timeoutReadyMs: flags.timeoutReady,
    ...(flags.timeoutSend === undefined ? {} : { timeoutSendMs: flags.timeoutSend }),
  });
}

/** How the gateway reaches executors at `grpcs://` addresses, or ones that want a key. */
interface HopFlags {
  executorsCa?: string;
  executorsCert?: string;
  executorsKey?: string;
  executorsApiKey?: string;
}

function addHopOptions(command: Command): Command {
  return command
    .option('--executors-ca <file>', 'CA (PEM) to trust for grpcs:// executor addresses')
    .option('--executors-cert <file>', 'client certificate (PEM) for executors that ask for one')
    .option('--executors-key <file>', "that certificate's private key (PEM)")
    .addOption(
      new Option('--executors-api-key <key>', "the executors' API key, sent on every hop").env(
        'MARIE_EXECUTORS_API_KEY',
      ),
    );
}

function hopOptionsFrom(flags: HopFlags): {
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  apiKey?: string;
} {
  if ((flags.executorsCert === undefined) !== (flags.executorsKey === undefined))
    throw new UsageError('--executors-cert and --executors-key go together');
  const ca = readPem('--executors-ca', flags.executorsCa);
  const cert = readPem('--executors-cert', flags.executorsCert);
  const key = readPem('--executors-key', flags.executorsKey);
  const tls = {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
  return {
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(flags.executorsApiKey ? { apiKey: flags.executorsApiKey } : {}),
  };
}
