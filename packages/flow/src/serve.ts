import {
  type ApiKeys,
  ConfigError,
  type Processor,
  type ServerLimits,
  type TlsServerOptions,
} from '@marie/core';
import type { HttpPlugin } from '@marie/transport-http';

/** What a runtime (an executor, a gateway) serves its processor over. */
export type ServeProtocol = 'grpc' | 'http' | 'websocket';

/** Every spelling a flag, a Flow's `with.protocol` or an executor's config accepts (any case). */
const SPELLINGS: Record<string, ServeProtocol> = {
  grpc: 'grpc',
  http: 'http',
  websocket: 'websocket',
  ws: 'websocket',
};

/**
 * The protocols named by `value` (a name or a list; Jina's `GRPC`, `HTTP`, `WEBSOCKET` and `ws`
 * too), each once, in the order given. A ConfigError names `where` and the unknown ones.
 */
export function parseProtocols(value: unknown, where: string): ServeProtocol[] {
  const names = [value].flat();
  if (names.length === 0) throw new ConfigError(`${where}: name at least one protocol`);
  const out: ServeProtocol[] = [];
  const unknown: string[] = [];
  for (const name of names) {
    const protocol = typeof name === 'string' ? SPELLINGS[name.trim().toLowerCase()] : undefined;
    if (protocol === undefined) unknown.push(String(name));
    else if (!out.includes(protocol)) out.push(protocol);
  }
  if (unknown.length)
    throw new ConfigError(`${where} ${unknown.join(' ')}: unknown (grpc, http, websocket)`);
  return out;
}

/** A port (0-65535; a number written as a string counts: `${{ ENV.PORT }}`), or a ConfigError. */
export function parsePort(value: unknown, where: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`${where}: ${JSON.stringify(value)} is not a port (0-65535)`);
  return n;
}

/**
 * One port per protocol from `value` (a port or a list; numbers written as strings count): none
 * given is `defaultPort` for the first protocol and the ports after it for the rest (all free ones
 * when it is 0); a single 0 asks for free ports for all of them.
 */
export function parsePorts(
  value: unknown,
  protocols: readonly ServeProtocol[],
  options: { where: string; defaultPort: number },
): number[] {
  const { where, defaultPort } = options;
  if (value === undefined || (Array.isArray(value) && value.length === 0))
    return protocols.map((_, i) => (defaultPort === 0 ? 0 : defaultPort + i));
  const ports = [value].flat().map((v) => parsePort(v, where));
  if (ports.length === 1 && ports[0] === 0) return protocols.map(() => 0);
  if (ports.length !== protocols.length)
    throw new ConfigError(
      `${where}: give one port per protocol (${protocols.length} protocol${protocols.length === 1 ? '' : 's'}, ${ports.length} port${ports.length === 1 ? '' : 's'})`,
    );
  return ports;
}

const SCHEMES = { grpc: 'grpc', http: 'http', websocket: 'ws' } as const;

/** The URL scheme of a protocol: `grpc`, `http`, `ws`, with an `s` under TLS. */
export function schemeOf(protocol: ServeProtocol, tls = false): string {
  return `${SCHEMES[protocol]}${tls ? 's' : ''}`;
}

export interface ServeOptions {
  protocol?: ServeProtocol | readonly ServeProtocol[];
  /** One port per protocol (0 picks a free one): 0 for all unless given. */
  port?: number | readonly number[];
  /** The interface to listen on (127.0.0.1). */
  host?: string;
  /** More routes on the HTTP server (the job API, /ui). */
  httpPlugins?: readonly HttpPlugin[];
  /** TLS on every protocol (grpcs, https, wss), keys required, limits (see the servers). */
  tls?: TlsServerOptions;
  apiKeys?: ApiKeys;
  limits?: Partial<ServerLimits>;
}

/** One server of a served processor: its protocol, where it listens, and its address. */
export interface ServedAddress {
  protocol: ServeProtocol;
  host: string;
  port: number;
  /** `grpc://host:port` (grpcs, http(s), ws(s)). */
  address: string;
}

export interface Served {
  /** One per protocol, in the order asked. */
  servers: ServedAddress[];
  /** Their addresses, `grpc://host:port` and the like. */
  addresses: string[];
  /**
   * Stops every server: no new requests, in-flight ones finish (cut after `graceMs`, 10 s unless
   * given), pending dynamic batches sent. The gRPC server also closes the processor.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/**
 * Serves a processor (an executor's handler, a gateway) on one port per protocol: what
 * `marie executor`, a Deployment's head and a Flow's gateway all run. If one server cannot
 * start, those already started are stopped and the error names the address.
 *
 * Each transport is loaded when a protocol asks for it: a gRPC-only executor never loads fastify,
 * and every module a process loads stays in the heap that each of its major GCs walks.
 */
export async function serveProcessor(
  processor: Processor,
  options: ServeOptions = {},
): Promise<Served> {
  const protocols = [options.protocol ?? 'grpc'].flat();
  const ports = [options.port ?? 0].flat();
  const host = options.host ?? '127.0.0.1';
  const started: { shutdown(graceMs?: number): Promise<void> }[] = [];
  const servers: ServedAddress[] = [];
  const shutdown = async (graceMs?: number) => {
    await Promise.all(started.map((s) => s.shutdown(graceMs)));
  };
  const common = {
    host,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  };
  for (const [i, protocol] of protocols.entries()) {
    const port = ports[i] ?? 0;
    let server: { start(): Promise<{ port: number }>; shutdown(graceMs?: number): Promise<void> };
    try {
      server =
        protocol === 'grpc'
          ? new (await import('@marie/transport-grpc')).GrpcServer(processor, { ...common, port })
          : new (await import('@marie/transport-http')).HttpServer(processor, {
              ...common,
              port,
              protocol,
              ...(protocol === 'http' && options.httpPlugins
                ? { plugins: options.httpPlugins }
                : {}),
            });
      const bound = await server.start();
      started.push(server);
      servers.push({
        protocol,
        host,
        port: bound.port,
        address: `${schemeOf(protocol, options.tls !== undefined)}://${host}:${bound.port}`,
      });
    } catch (err) {
      await shutdown(0).catch(() => {});
      throw new Error(`cannot serve ${protocol} on ${host}:${port}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return { servers, addresses: servers.map((s) => s.address), shutdown };
}
