import { connect, createServer, type Server } from 'node:net';
import { Client } from '@marie/client';
import { Executor, RequestHandler, requests } from '@marie/core';
import { describe, expect, it } from 'vitest';
import { parsePorts, parseProtocols, schemeOf, serveProcessor } from './serve.js';

class Echo extends Executor {
  @requests({ on: '/echo' })
  echo() {}
}

describe('parseProtocols and parsePorts', () => {
  it('take the same spellings for executors, gateways and Flows', () => {
    expect(parseProtocols(['GRPC', 'ws', 'http', 'websocket'], '--protocol')).toEqual([
      'grpc',
      'websocket',
      'http',
    ]);
    expect(parseProtocols('Http', 'with.protocol')).toEqual(['http']);
    expect(() => parseProtocols(['grpc', 'smtp'], '--protocol')).toThrow(
      '--protocol smtp: unknown (grpc, http, websocket)',
    );
    expect(() => parseProtocols([], '--protocol')).toThrow(/at least one/);
  });

  it('give one port per protocol: defaults counted up, a single 0 for all, strings as numbers', () => {
    const both = ['grpc', 'http'] as const;
    const where = { where: '--port', defaultPort: 54321 };
    expect(parsePorts(undefined, both, where)).toEqual([54321, 54322]);
    expect(parsePorts(undefined, both, { where: 'with.port', defaultPort: 0 })).toEqual([0, 0]);
    expect(parsePorts(['0'], both, where)).toEqual([0, 0]);
    expect(parsePorts(['8080', 8081], both, where)).toEqual([8080, 8081]);
    expect(() => parsePorts(['5000'], both, where)).toThrow(
      '--port: give one port per protocol (2 protocols, 1 port)',
    );
    expect(() => parsePorts(['http'], ['grpc'], where)).toThrow('--port: "http" is not a port');
    expect(schemeOf('websocket', true)).toBe('wss');
  });
});

describe('serveProcessor', () => {
  it('serves one processor on every protocol, answering alike', async () => {
    const handler = new RequestHandler(new Echo());
    const served = await serveProcessor(handler, { protocol: ['grpc', 'http', 'websocket'] });
    try {
      expect(served.addresses.map((a) => a.replace(/:\d+$/, ''))).toEqual([
        'grpc://127.0.0.1',
        'http://127.0.0.1',
        'ws://127.0.0.1',
      ]);
      for (const address of served.addresses) {
        const client = new Client({ host: address });
        const docs = await client.post('/echo', [{ text: 'x' }]);
        expect(docs[0]!.text, address).toBe('x');
        client.close();
      }
    } finally {
      await served.shutdown(1000);
      await handler.close();
    }
  });

  it('stops the servers it started when one cannot listen, naming where', async () => {
    const taken = await listening();
    const free = await listening();
    const [takenPort, freePort] = [portOf(taken), portOf(free)];
    await new Promise((r) => free.close(r));
    const handler = new RequestHandler(new Echo());
    try {
      await expect(
        serveProcessor(handler, { protocol: ['grpc', 'http'], port: [freePort, takenPort] }),
      ).rejects.toThrow(`cannot serve http on 127.0.0.1:${takenPort}`);
      // The gRPC server that had started is gone again: its port takes no connection.
      const refused = await new Promise<boolean>((resolve) => {
        const socket = connect(freePort, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    } finally {
      taken.close();
      await handler.close();
    }
  });
});

async function listening(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;
