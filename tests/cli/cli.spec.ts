import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { describe, expect, it } from 'vitest';
import { executorArgs, portOf, runMarie, waitReady } from '../support/marie-process.js';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);
const conformanceYaml = join(import.meta.dirname, '..', 'conformance', 'reference.yml');

describe('marie executor', () => {
  it('prints one ready line once healthy, serves, and stops gracefully on SIGTERM', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'marie-cli-')), 'closed.txt');
    const p = runMarie([
      'executor',
      '--uses',
      fixture('lifecycle.yml'),
      '--uses-with',
      JSON.stringify({ marker }),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ]);
    const [line] = await waitReady(p);
    expect(line).toMatch(/^ready grpc:\/\/127\.0\.0\.1:\d+$/);
    expect(p.stdout()).toBe(`${line}\n`);

    const client = new Client({ host: `grpc://127.0.0.1:${portOf(line!)}` });
    const inflight = client.post('/slow', [{ text: 'x' }], { parameters: { ms: 600 } });
    await new Promise((r) => setTimeout(r, 150));
    p.child.kill('SIGTERM');
    // The call that was running when SIGTERM came still completes.
    expect((await inflight)[0]!.text).toBe('finished');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(readFileSync(marker, 'utf8')).toBe(`closed by ${p.child.pid}\n`);
    expect(await client.isReady({ timeoutMs: 500 })).toBe(false);
    client.close();
  });

  it('serves a class named by --uses from --py-modules, with --uses-with and --name', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'marie-cli-')), 'closed.txt');
    const p = runMarie([
      'executor',
      '--uses',
      'LifecycleExecutor',
      '--py-modules',
      fixture('lifecycle-executor.ts'),
      '--uses-with',
      JSON.stringify({ marker }),
      '--name',
      'named',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ]);
    const [line] = await waitReady(p);
    const client = new Client({ host: line!.slice('ready '.length) });
    expect(
      await client.post('/slow', [{}], { parameters: { ms: 1 } }).then((d) => d[0]!.text),
    ).toBe('finished');
    client.close();
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it.each([
    [
      ['--uses', 'missing.yml'],
      /^marie executor: missing\.yml: cannot read the config \(ENOENT\)$/,
    ],
    [
      ['--uses', 'NoSuchExecutor'],
      /^marie executor: NoSuchExecutor: unknown jtype "NoSuchExecutor"; executor classes found: /,
    ],
    [
      ['--uses', fixture('lifecycle.yml'), '--uses-with', '{oops'],
      /^marie executor: --uses-with: not valid JSON/,
    ],
    [
      ['--uses', fixture('lifecycle.yml'), '--uses-with', '{"marker":"/tmp/x","extra":1}'],
      /does not take "extra" \(under with:\); it takes: marker$/,
    ],
    [
      ['--uses', fixture('lifecycle.yml'), '--port', 'abc'],
      /--port: "abc" is not a port \(0-65535\)/,
    ],
    [
      ['--uses', fixture('lifecycle.yml'), '--protocol', 'grpc', 'carrier-pigeon'],
      /^marie executor: --protocol carrier-pigeon: unknown \(grpc, http, websocket\)$/,
    ],
  ])('refuses bad configuration %j with one line and exit code 2', async (args, message) => {
    const p = runMarie(['executor', ...args, '--port', '0']);
    const { code } = await p.exited;
    expect(code).toBe(2);
    const lines = p.stderr().trim().split('\n');
    expect(lines.some((l) => message.test(l))).toBe(true);
    expect(p.stdout()).toBe('');
  });
});

describe('marie executor on several protocols', () => {
  it('prints one ready line per protocol and answers on each, ping included', async () => {
    // Any spelling a Flow's with.protocol takes: `WS` is WebSocket.
    const p = runMarie(executorArgs(conformanceYaml, { protocols: ['grpc', 'HTTP', 'WS'] }));
    const lines = await waitReady(p, 3);
    expect(lines.map((l) => l.replace(/:\d+$/, ''))).toEqual([
      'ready grpc://127.0.0.1',
      'ready http://127.0.0.1',
      'ready ws://127.0.0.1',
    ]);
    for (const line of lines) {
      const address = line.slice('ready '.length);
      const client = new Client({ host: address });
      const docs = await client.post('/upper', [{ text: 'x' }]);
      expect(docs[0]!.text, address).toBe('X');
      // What an executor returns reaches the client through onDone (Jina's on_done), per answer.
      const done: Record<string, unknown>[] = [];
      await client.post('/params', [{ text: 'a' }, { text: 'b' }], {
        requestSize: 1,
        parameters: { job_id: 'j-1' },
        onDone: (r) => done.push(r.parameters),
      });
      expect(done, address).toHaveLength(2);
      expect(done[0]!.__results__, address).toMatchObject({
        ref: { seen: { job_id: 'j-1' } },
      });
      client.close();
      const ping = runMarie(['ping', address]);
      expect((await ping.exited).code, address).toBe(0);
    }
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('wants one port per protocol', async () => {
    const p = runMarie([
      'executor',
      '--uses',
      conformanceYaml,
      '--protocol',
      'grpc',
      'http',
      '--port',
      '5000',
    ]);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toContain('--port: give one port per protocol (2 protocols, 1 port)');
  });
});

describe('marie ping', () => {
  it('exits 0 for a serving runtime and 1 for none within --timeout', async () => {
    const p = runMarie(executorArgs(conformanceYaml));
    const [line] = await waitReady(p);
    const address = line!.slice('ready '.length);
    const ok = runMarie(['ping', address]);
    expect((await ok.exited).code).toBe(0);
    expect(ok.stdout()).toBe(`${address}: SERVING\n`);
    p.child.kill('SIGTERM');
    await p.exited;
    const started = Date.now();
    const down = runMarie(['ping', address, '--timeout', '700']);
    expect((await down.exited).code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses a MARIE_HEAP_GROWING_PERCENT that is not a whole number, naming it', async () => {
    const p = runMarie(['executor', '--uses', fixture('lifecycle.yml'), '--port', '0'], {
      env: { MARIE_HEAP_GROWING_PERCENT: 'lots' },
    });
    expect((await p.exited).code).toBe(2);
    expect(p.stderr().trim()).toBe(
      'marie executor: MARIE_HEAP_GROWING_PERCENT must be a whole number, got "lots"',
    );
  });
});
