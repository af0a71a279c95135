import { describe, expect, it } from 'vitest';
import { Client, resolveAddress } from './index.js';

describe('Client addresses', () => {
  it('reads protocol://host:port or host with port and protocol options', () => {
    expect(resolveAddress({ host: 'grpc://10.0.0.1:5000' })).toEqual({
      protocol: 'grpc',
      host: '10.0.0.1',
      port: 5000,
    });
    expect(resolveAddress({ host: 'localhost', port: 7, protocol: 'grpcs' })).toEqual({
      protocol: 'grpcs',
      host: 'localhost',
      port: 7,
    });
    expect(resolveAddress({ host: '[::1]:9' })).toEqual({ protocol: 'grpc', host: '::1', port: 9 });
    expect(resolveAddress({})).toEqual({ protocol: 'grpc', host: '127.0.0.1', port: 54321 });
  });

  it('names what is wrong with an address', () => {
    expect(() => resolveAddress({ host: 'ftp://x:1' })).toThrow(
      'host: unknown protocol "ftp" (grpc, grpcs, http, https, ws, wss)',
    );
    expect(() => resolveAddress({ host: 'grpc://x:1/extra/path' })).toThrow(
      'host: cannot read "grpc://x:1/extra/path"',
    );
  });

  it('reports a runtime that is not there as not ready, on every protocol, without throwing', async () => {
    for (const host of ['grpc://127.0.0.1:1', 'http://127.0.0.1:1', 'ws://127.0.0.1:1']) {
      const client = new Client({ host });
      expect(await client.isReady({ timeoutMs: 300 }), host).toBe(false);
      await expect(client.post('/x', [], { timeoutMs: 300 })).rejects.toMatchObject({
        name: 'MarieError',
        code: expect.stringMatching(/unavailable|deadline_exceeded/),
      });
      client.close();
    }
  });
});
