import { type DataRequest, type Executor, RequestHandler } from '@marie/core';
import type { DocList } from '@marie/docs';
import { GrpcClient, GrpcServer } from '@marie/transport-grpc';
import { HttpClient, HttpServer, WsClient } from '@marie/transport-http';

/** What the suite needs of a transport: a request in, the answer out, and streaming. */
export interface Target {
  call(request: DataRequest<any>): Promise<DataRequest>;
  stream(endpoint: string, doc: object): AsyncIterable<object>;
  close(): Promise<void>;
}

export type TargetFactory = (executor: Executor) => Promise<Target>;

export const inProcess: TargetFactory = async (executor) => {
  const handler = new RequestHandler(executor);
  return {
    call: (req) => handler.handle(req),
    async *stream(endpoint, document) {
      for await (const part of handler.streamDoc({
        header: { requestId: 'r', execEndpoint: endpoint },
        parameters: {},
        routes: [],
        document,
      })) {
        if (part.header.status) throw new Error(part.header.status.description);
        yield part.document as object;
      }
    },
    close: () => handler.close(),
  };
};

export const overGrpc: TargetFactory = async (executor) => {
  const server = new GrpcServer(new RequestHandler(executor), { host: '127.0.0.1', port: 0 });
  const { port } = await server.start();
  const client = new GrpcClient({ host: '127.0.0.1', port });
  return {
    call: (req) => client.send(req),
    stream: (endpoint, doc) => client.streamDoc(endpoint, doc) as AsyncIterable<object>,
    async close() {
      client.close();
      await server.shutdown();
    },
  };
};

export const overHttp: TargetFactory = async (executor) => {
  const handler = new RequestHandler(executor);
  const server = new HttpServer(handler, { protocol: 'http', host: '127.0.0.1', port: 0 });
  const { port } = await server.start();
  const client = new HttpClient({ host: '127.0.0.1', port });
  return {
    call: (req) => client.send(req),
    stream: (endpoint, doc) =>
      client.streamDoc(endpoint, doc as Record<string, unknown>) as AsyncIterable<object>,
    async close() {
      client.close();
      await server.shutdown();
      await handler.close();
    },
  };
};

function overWebSocket(subprotocol: 'json' | 'bytes'): TargetFactory {
  return async (executor) => {
    const handler = new RequestHandler(executor);
    const server = new HttpServer(handler, { protocol: 'websocket', host: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    const client = new WsClient({ host: '127.0.0.1', port, subprotocol });
    return {
      call: (req) => client.send(req),
      stream: (endpoint, doc) => client.streamDoc(endpoint, doc) as AsyncIterable<object>,
      async close() {
        await server.shutdown();
        await handler.close();
      },
    };
  };
}

export const overWsJson = overWebSocket('json');
export const overWsBytes = overWebSocket('bytes');

export function texts(docs: DocList<any> | readonly unknown[]): unknown[] {
  return (docs as { text?: unknown }[]).map((d) => d.text);
}
