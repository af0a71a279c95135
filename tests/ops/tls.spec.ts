// TLS on every front door, with certificates openssl made: an executor serving grpcs, https and
// wss; one asking for client certificates (mutual TLS); a gateway reaching a grpcs:// executor
// with a CA. Real processes, real handshakes.
import { join } from 'node:path';
import { Client } from '@marie/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, type TestCerts } from '../support/certs.js';
import {
  executorArgs,
  type MarieProcess,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
let certs: TestCerts;
const started: MarieProcess[] = [];

beforeAll(() => {
  certs = makeCerts();
});
afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  certs?.remove();
});

async function serve(args: string[], count: number): Promise<string[]> {
  const p = runMarie(args);
  started.push(p);
  return (await waitReady(p, count, 30_000)).map((l) => l.slice('ready '.length));
}

const ALL = ['grpc', 'http', 'websocket'];
/** The server certificate's flags. */
const serverTls = () => [
  '--ssl-certfile',
  certs.files.serverCert,
  '--ssl-keyfile',
  certs.files.serverKey,
];

const local = (address: string) => address.replace('0.0.0.0', '127.0.0.1');

describe('TLS', () => {
  let tlsAddresses: string[];

  it('serves grpcs, https and wss; a client trusting the CA gets answers, one without it is refused', async () => {
    tlsAddresses = (
      await serve(executorArgs(REFERENCE, { protocols: ALL }, ...serverTls()), 3)
    ).map(local);
    expect(tlsAddresses.map((a) => a.split('://')[0])).toEqual(['grpcs', 'https', 'wss']);
    for (const host of tlsAddresses) {
      const trusting = new Client({ host, ca: certs.ca });
      const docs = await trusting.post('/upper', [{ text: 'over tls' }]);
      expect(docs[0]!.text, host).toBe('OVER TLS');
      expect(await trusting.isReady(), host).toBe(true);
      trusting.close();
      const unaware = new Client({ host });
      await expect(
        unaware.post('/upper', [{ text: 'x' }], { timeoutMs: 3000 }),
        host,
      ).rejects.toMatchObject({
        code: 'unavailable',
      });
      unaware.close();
    }
    // Plain text to a TLS port is no answer either.
    const plain = new Client({ host: tlsAddresses[0]!.replace('grpcs', 'grpc') });
    await expect(plain.post('/upper', [{ text: 'x' }], { timeoutMs: 3000 })).rejects.toBeDefined();
    plain.close();
  }, 60_000);

  it('mutual TLS: a certificate the CA signed gets in; none, or one another CA signed, does not', async () => {
    const addresses = (
      await serve(
        executorArgs(
          REFERENCE,
          { protocols: ALL },
          ...serverTls(),
          '--ssl-client-ca',
          certs.files.ca,
        ),
        3,
      )
    ).map(local);
    for (const host of addresses) {
      const member = new Client({
        host,
        ca: certs.ca,
        cert: certs.clientCert,
        key: certs.clientKey,
      });
      expect((await member.post('/upper', [{ text: 'mutual' }]))[0]!.text, host).toBe('MUTUAL');
      member.close();
      for (const stranger of [
        new Client({ host, ca: certs.ca }),
        new Client({ host, ca: certs.ca, cert: certs.strangerCert, key: certs.strangerKey }),
      ]) {
        await expect(
          stranger.post('/upper', [{ text: 'x' }], { timeoutMs: 3000 }),
          host,
        ).rejects.toBeDefined();
        stranger.close();
      }
    }
  }, 60_000);

  it('a gateway reaches an executor at grpcs:// with the CA it is given, and serves TLS itself', async () => {
    const grpcs = tlsAddresses[0]!;
    const [gateway] = await serve(
      [
        'gateway',
        '--graph-description',
        '{"start-gateway":["ref"],"ref":["end-gateway"]}',
        '--deployments-addresses',
        JSON.stringify({ ref: [grpcs] }),
        '--executors-ca',
        certs.files.ca,
        '--host',
        '127.0.0.1',
        '--protocol',
        'http',
        '--port',
        '0',
        ...serverTls(),
        '--timeout-ready',
        '10000',
      ],
      1,
    );
    expect(gateway).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = new Client({ host: gateway!, ca: certs.ca });
    const docs = await client.post('/upper', [{ text: 'through the gateway' }]);
    expect(docs[0]!.text).toBe('THROUGH THE GATEWAY');
    client.close();
    // Without the CA the gateway cannot reach the executor: it does not become ready.
    const blind = runMarie([
      'gateway',
      '--graph-description',
      '{"start-gateway":["ref"],"ref":["end-gateway"]}',
      '--deployments-addresses',
      JSON.stringify({ ref: [grpcs] }),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--timeout-ready',
      '1500',
    ]);
    started.push(blind);
    const exit = await blind.exited;
    expect(exit.code).toBe(1);
    expect(blind.stderr()).toMatch(/not ready after 1500 ms/);
  }, 60_000);
});
