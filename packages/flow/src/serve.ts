import type { ApiKeys, Processor, ServerLimits, TlsServerOptions } from '@marie/core';
import { GrpcServer } from '@marie/transport-grpc';
import { type HttpPlugin, HttpServer } from '@marie/transport-http';

export type GatewayProtocol = 'grpc' | 'http' | 'websocket';

const SCHEME = { grpc: 'grpc', http: 'http', websocket: 'ws' } as const;

export interface Served {
  addresses: string[];
  shutdown(): Promise<void>;
}

/** Serves a processor on one port per protocol; addresses as `grpc://host:port`. */
export async function serveProcessor(
  processor: Processor,
  options: {
    protocol?: GatewayProtocol | GatewayProtocol[];
    port?: number | number[];
    host?: string;
    /** More routes on the HTTP servers (the job API, /ui). */
    httpPlugins?: readonly HttpPlugin[];
    /** TLS on every protocol (grpcs, https, wss), keys required, limits (see the servers). */
    tls?: TlsServerOptions;
    apiKeys?: ApiKeys;
    limits?: Partial<ServerLimits>;
  },
): Promise<Served> {
  const protocols = [options.protocol ?? 'grpc'].flat();
  const ports = [options.port ?? 0].flat();
  const host = options.host ?? '127.0.0.1';
  const servers: { shutdown(): Promise<void> }[] = [];
  const addresses: string[] = [];
  const shutdown = async () => {
    await Promise.all(servers.map((s) => s.shutdown()));
  };
  try {
    for (const [i, protocol] of protocols.entries()) {
      const port = ports[i] ?? 0;
      const common = {
        host,
        port,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
        ...(options.limits ? { limits: options.limits } : {}),
      };
      const server =
        protocol === 'grpc'
          ? new GrpcServer(processor, common)
          : new HttpServer(processor, {
              ...common,
              protocol,
              ...(protocol === 'http' && options.httpPlugins
                ? { plugins: options.httpPlugins }
                : {}),
            });
      servers.push(server);
      const bound = await server.start();
      addresses.push(`${SCHEME[protocol]}${options.tls ? 's' : ''}://${host}:${bound.port}`);
    }
  } catch (err) {
    await shutdown();
    throw err;
  }
  return { addresses, shutdown };
}
