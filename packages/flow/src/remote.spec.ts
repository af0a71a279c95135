import { createServer } from 'node:net';
import { Executor, RequestHandler, requests } from '@marie/core';
import type { DocList, LegacyDocument } from '@marie/docs';
import { GrpcServer } from '@marie/transport-grpc';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAddress, RemoteDeployment } from './remote.js';

class Echo extends Executor {
  @requests
  echo(docs: DocList<LegacyDocument>) {
    for (const d of docs) d.text = `echo ${d.text}`;
  }
}

const servers: GrpcServer[] = [];
afterAll(() => Promise.all(servers.map((s) => s.shutdown(0))));

async function serve(): Promise<number> {
  const server = new GrpcServer(new RequestHandler(new Echo({ metas: { name: 'echo' } })), {
    host: '127.0.0.1',
    port: 0,
  });
  servers.push(server);
  return (await server.start()).port;
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe('RemoteDeployment', () => {
  it('reaches an executor through dns:/// (every address of the name, round robin)', async () => {
    const port = await serve();
    await using remote = await new RemoteDeployment({
      name: 'echo',
      addresses: [`dns:///localhost:${port}`],
    }).start();
    const heard: unknown[] = [];
    const docs = await remote.post('/x', [{ text: 'hi' }], {
      onDone: (r) => heard.push(r.parameters.__results__),
    });
    expect(docs.get('text')).toEqual(['echo hi']);
    // onDone hears of the answer, as from any client's post.
    expect(heard).toHaveLength(1);
    expect((await remote.endpoints()).endpoints).toContain('/default');
  });

  it('retries a replica that refuses connections on another one', async () => {
    const live = await serve();
    const dead = await deadPort();
    await using remote = new RemoteDeployment({
      name: 'echo',
      addresses: [`grpc://127.0.0.1:${dead}`, `127.0.0.1:${live}`],
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => remote.post('/x', [{ text: String(i) }])),
    );
    expect(answers.map((d) => d[0]!.text)).toEqual(answers.map((_, i) => `echo ${i}`));
  });

  it('start() gives up after timeoutReadyMs, naming the replica', async () => {
    const dead = await deadPort();
    const remote = new RemoteDeployment({
      name: 'gone',
      addresses: `127.0.0.1:${dead}`,
      timeoutReadyMs: 300,
    });
    await expect(remote.start()).rejects.toThrow(/gone\/shard-0\/replica-0 .* not ready after 300/);
    await remote.close();
  });

  it('parses addresses and names a bad one', () => {
    expect(parseAddress('grpc://a:1')).toEqual({
      host: 'a',
      port: 1,
      tls: false,
      allAddresses: false,
    });
    expect(parseAddress('grpcs://[::1]:443')).toMatchObject({ host: '::1', tls: true });
    expect(parseAddress('dns:///svc.ns.svc:8080')).toMatchObject({
      host: 'svc.ns.svc',
      allAddresses: true,
    });
    expect(() => parseAddress('http://a:1', 'x.addresses')).toThrow(/x\.addresses: "http:\/\/a:1"/);
    expect(() => parseAddress('a:70000')).toThrow(/not grpc/);
    expect(() => new RemoteDeployment({ name: 'n', addresses: [] })).toThrow(/at least one/);
    expect(() => new RemoteDeployment({ name: 'n', addresses: ' , ' })).toThrow(/at least one/);
    // One string may list replicas, as an environment variable holds them.
    const two = new RemoteDeployment({ name: 'n', addresses: 'grpc://a:1, dns:///b:2' });
    expect(two.shards.map((s) => s.length)).toEqual([2]);
  });
});
