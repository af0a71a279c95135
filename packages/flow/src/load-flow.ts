import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  ApiKeys,
  ConfigError,
  LIMITS,
  readYamlFile,
  resolveLimits,
  type ServerLimits,
  substituteVariables,
} from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { Flow, type FlowExecutor, type FlowOptions } from './flow.js';
import { parseAutoscale, parseGpus, parseResources } from './resources.js';
import { parsePort, parsePorts, parseProtocols } from './serve.js';

const EXECUTOR_KEYS: Record<string, keyof FlowExecutor> = {
  name: 'name',
  uses: 'uses',
  uses_with: 'usesWith',
  usesWith: 'usesWith',
  uses_metas: 'usesMetas',
  usesMetas: 'usesMetas',
  py_modules: 'pyModules',
  pyModules: 'pyModules',
  replicas: 'replicas',
  shards: 'shards',
  polling: 'polling',
  needs: 'needs',
  when: 'when',
  floating: 'floating',
  env: 'env',
  timeout_ready: 'timeoutReadyMs',
  timeoutReadyMs: 'timeoutReadyMs',
  retries: 'retries',
  exit_on_exceptions: 'exitOnExceptions',
  exitOnExceptions: 'exitOnExceptions',
  no_reduce: 'noReduce',
  noReduce: 'noReduce',
  external: 'external',
  addresses: 'addresses',
  image: 'image',
  monitoring: 'monitoring',
  port_monitoring: 'portMonitoring',
  portMonitoring: 'portMonitoring',
  tracing: 'tracing',
  traces_exporter_host: 'tracesExporterHost',
  tracesExporterHost: 'tracesExporterHost',
  traces_exporter_port: 'tracesExporterPort',
  tracesExporterPort: 'tracesExporterPort',
  reload: 'reload',
  tls: 'tls',
  api_key: 'apiKey',
  apiKey: 'apiKey',
  gpus: 'gpus',
  resources: 'resources',
  autoscale: 'autoscale',
  node_selector: 'nodeSelector',
  nodeSelector: 'nodeSelector',
  tolerations: 'tolerations',
};
const flag = (value: unknown, where: string): boolean => {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new ConfigError(`${where}: ${JSON.stringify(value)} is not true or false`);
};
const text = (value: unknown, where: string): string => {
  if (typeof value !== 'string' || value === '')
    throw new ConfigError(`${where}: expected a non-empty string`);
  return value;
};
/** The executor keys of operations, checked as they are read (ports written as strings count). */
const OPERATIONS_KEYS: Partial<Record<keyof FlowExecutor, (v: unknown, where: string) => unknown>> =
  {
    monitoring: flag,
    portMonitoring: parsePort,
    tracing: flag,
    tracesExporterHost: text,
    tracesExporterPort: parsePort,
    reload: flag,
    apiKey: text,
    gpus: parseGpus,
    resources: parseResources,
    autoscale: parseAutoscale,
    nodeSelector: (v, where) => {
      if (!isPlainObject(v) || Object.values(v).some((x) => typeof x !== 'string'))
        throw new ConfigError(`${where}: expected a mapping of label to value`);
      return v;
    },
    tolerations: (v, where) => {
      if (!Array.isArray(v) || v.some((t) => !isPlainObject(t)))
        throw new ConfigError(`${where}: expected a list of tolerations (key, operator, effect)`);
      return v;
    },
  };

/** Jina's way to name an external executor: `external: true, host: h, port: p`. */
const EXTERNAL_KEYS = new Set(['host', 'port']);

/**
 * A Flow from YAML, Jina's shape: `jtype: Flow`, `with: { protocol, port, timeout_send }`,
 * `executors: [{ name, uses, uses_with, py_modules, replicas, shards, needs, when, floating }]`.
 * Paths in `uses` and `py_modules` are relative to the YAML file; `${{ ENV.X }}` is substituted.
 * A `jobs:` section (a job API and workers on the gateway) is carried in `flow.options.jobs`.
 */
export async function loadFlow(
  path: string,
  options: { env?: Record<string, string | undefined> } = {},
): Promise<Flow> {
  const { value, file } = await readYamlFile(path);
  const raw = substituteVariables(value, {
    env: options.env ?? process.env,
    context: {},
    source: path,
    warn: () => {},
  });
  if (!isPlainObject(raw) || raw.jtype !== 'Flow')
    throw new ConfigError(`${path}: expected "jtype: Flow"`);
  const w = isPlainObject(raw.with) ? raw.with : {};
  const protocol = parseProtocols(w.protocol ?? 'grpc', `${path}: with.protocol`);
  const timeout = w.timeout_send ?? w.timeoutSendMs;
  const name = w.name ?? raw.name;
  const flow = new Flow({
    ...(typeof name === 'string' ? { name } : {}),
    protocol,
    ...(w.port === undefined
      ? {}
      : { port: parsePorts(w.port, protocol, { where: `${path}: with.port`, defaultPort: 0 }) }),
    ...(typeof w.host === 'string' ? { host: w.host } : {}),
    ...(timeout === undefined ? {} : { timeoutSendMs: Number(timeout) }),
    ...operations(w, path),
    ...security(w, path, dirname(file)),
  });
  if (raw.jobs !== undefined) {
    if (!isPlainObject(raw.jobs))
      throw new ConfigError(`${path}: jobs must be a mapping (database, queues, uploads)`);
    if (!protocol.includes('http'))
      throw new ConfigError(
        `${path}: jobs: the job API is served over HTTP; add http to with.protocol`,
      );
    // Plan files (jobs.plans) are relative to the YAML file, as `uses` is.
    const plans = raw.jobs.plans;
    flow.options.jobs = Array.isArray(plans)
      ? {
          ...raw.jobs,
          plans: plans.map((p) => (typeof p === 'string' ? resolve(dirname(file), p) : p)),
        }
      : raw.jobs;
  }
  if (!Array.isArray(raw.executors) || raw.executors.length === 0)
    throw new ConfigError(`${path}: "executors" must list at least one executor`);
  for (const [i, entry] of raw.executors.entries()) {
    if (!isPlainObject(entry)) throw new ConfigError(`${path}: executors[${i}] must be a mapping`);
    const executor: Record<string, unknown> = { cwd: dirname(file) };
    for (const [key, value] of Object.entries(entry)) {
      if (EXTERNAL_KEYS.has(key) && entry.external === true) continue;
      const name = EXECUTOR_KEYS[key];
      if (!name)
        throw new ConfigError(
          `${path}: executors[${i}].${key} is not a flow executor key (${Object.keys(EXECUTOR_KEYS)
            .filter((k) => !/[A-Z]/.test(k))
            .join(', ')})`,
        );
      const where = `${path}: executors[${i}].${key}`;
      executor[name] =
        name === 'tls'
          ? clientTls(value, where, dirname(file))
          : OPERATIONS_KEYS[name]
            ? OPERATIONS_KEYS[name](value, where)
            : value;
    }
    if (executor.external === true && executor.addresses === undefined) {
      if (typeof entry.host !== 'string' || entry.port === undefined)
        throw new ConfigError(`${path}: executors[${i}] is external: give host and port`);
      executor.addresses = `${entry.host}:${entry.port}`;
    }
    if (
      typeof executor.name !== 'string' ||
      (typeof executor.uses !== 'string' && executor.external !== true)
    )
      throw new ConfigError(`${path}: executors[${i}] needs a name and uses (or external)`);
    flow.add(executor as unknown as FlowExecutor);
  }
  return flow;
}

/** `with.monitoring`, `port_monitoring`, `tracing`, `traces_exporter_host`, `traces_exporter_port`. */
function operations(w: Record<string, unknown>, path: string): Partial<FlowOptions> {
  const out: Partial<FlowOptions> = {};
  const on = (key: string) => w[key] !== undefined && flag(w[key], `${path}: with.${key}`);
  const onePort = (key: string) =>
    w[key] === undefined ? undefined : parsePort(w[key], `${path}: with.${key}`);
  if (on('monitoring')) out.monitoring = true;
  const pm = onePort('port_monitoring');
  if (pm !== undefined) out.portMonitoring = pm;
  if (on('tracing')) out.tracing = true;
  if (w.traces_exporter_host !== undefined) {
    if (typeof w.traces_exporter_host !== 'string' || w.traces_exporter_host === '')
      throw new ConfigError(`${path}: with.traces_exporter_host must be a host name`);
    out.tracesExporterHost = w.traces_exporter_host;
  }
  const tp = onePort('traces_exporter_port');
  if (tp !== undefined) out.tracesExporterPort = tp;
  return out;
}

function readPem(file: unknown, what: string, dir: string): Buffer {
  if (typeof file !== 'string' || file === '')
    throw new ConfigError(`${what}: expected a file path`);
  try {
    return readFileSync(resolve(dir, file));
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** An external executor's `tls: { ca, cert, key }` (files, relative to the YAML). */
function clientTls(raw: unknown, what: string, dir: string) {
  if (!isPlainObject(raw)) throw new ConfigError(`${what}: expected a mapping of ca, cert, key`);
  for (const k of Object.keys(raw))
    if (!['ca', 'cert', 'key'].includes(k))
      throw new ConfigError(`${what}.${k}: unknown key (ca, cert, key)`);
  if ((raw.cert === undefined) !== (raw.key === undefined))
    throw new ConfigError(`${what}: cert and key go together`);
  return {
    ...(raw.ca !== undefined ? { ca: readPem(raw.ca, `${what}.ca`, dir) } : {}),
    ...(raw.cert !== undefined ? { cert: readPem(raw.cert, `${what}.cert`, dir) } : {}),
    ...(raw.key !== undefined ? { key: readPem(raw.key, `${what}.key`, dir) } : {}),
  };
}

/** A Flow's `with:` keys of the gateway's limits (`request_timeout`: requestTimeoutMs, ...). */
const LIMIT_KEYS: Readonly<Record<string, keyof ServerLimits>> = Object.fromEntries(
  LIMITS.map((l) => [l.yaml, l.key]),
);

/**
 * The gateway's TLS (`ssl_certfile`, `ssl_keyfile`, `ssl_client_ca`), API keys (`api_keys_file`
 * and `$MARIE_API_KEYS`), limits (`max_request_bytes`, ...) and the CA for `grpcs://` executors
 * (`executors_tls`).
 */
function security(w: Record<string, unknown>, path: string, dir: string): Partial<FlowOptions> {
  const out: Partial<FlowOptions> = {};
  if ((w.ssl_certfile === undefined) !== (w.ssl_keyfile === undefined))
    throw new ConfigError(`${path}: with.ssl_certfile and with.ssl_keyfile go together`);
  if (w.ssl_certfile !== undefined)
    out.tls = {
      cert: readPem(w.ssl_certfile, `${path}: with.ssl_certfile`, dir),
      key: readPem(w.ssl_keyfile, `${path}: with.ssl_keyfile`, dir),
      ...(w.ssl_client_ca !== undefined
        ? { clientCa: readPem(w.ssl_client_ca, `${path}: with.ssl_client_ca`, dir) }
        : {}),
    };
  else if (w.ssl_client_ca !== undefined)
    throw new ConfigError(`${path}: with.ssl_client_ca needs ssl_certfile and ssl_keyfile`);
  let keys: ApiKeys | undefined;
  try {
    keys = ApiKeys.from({
      env: process.env.MARIE_API_KEYS,
      file: w.api_keys_file === undefined ? undefined : resolve(dir, String(w.api_keys_file)),
    });
  } catch (err) {
    throw new ConfigError(`${path}: with.api_keys_file: ${(err as Error).message}`);
  }
  if (keys) out.apiKeys = keys;
  else if (w.api_keys_file !== undefined)
    throw new ConfigError(`${path}: with.api_keys_file holds no key`);
  const limits: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(LIMIT_KEYS))
    if (w[key] !== undefined) limits[field] = Number(w[key]);
  if (Object.keys(limits).length) {
    try {
      resolveLimits(limits); // checked here; the gateway's defaults fill the rest
      out.limits = limits as Partial<ServerLimits>;
    } catch (err) {
      const field = String((err as { field?: string }).field ?? '').replace(/^limits\./, '');
      const key = Object.entries(LIMIT_KEYS).find(([, f]) => f === field)?.[0] ?? field;
      throw new ConfigError(
        `${path}: with.${key}: ${(err as Error).message.replace(/^[^:]*: /, '')}`,
      );
    }
  }
  if (w.executors_tls !== undefined)
    out.executorTls = clientTls(w.executors_tls, `${path}: with.executors_tls`, dir);
  if (w.resources !== undefined)
    out.resources = parseResources(w.resources, `${path}: with.resources`);
  return out;
}
