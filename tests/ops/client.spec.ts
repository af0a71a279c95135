// The client's retries (Jina's max_attempts, initial_backoff, max_backoff, backoff_multiplier) on
// all three protocols against a runtime that is not up yet, and its progress bar; logging flags.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@marie/client';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../packages/storage/test/support/postgres.js';
import {
  executorArgs,
  MARIE_BIN,
  type MarieProcess,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

const run = promisify(execFile);
const REFERENCE = join(ROOT, 'tests/conformance/reference.yml');
const started: MarieProcess[] = [];
afterAll(() => {
  for (const p of started) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

describe('client retries', () => {
  it('retries UNAVAILABLE with a growing backoff until the runtime is up, on gRPC, HTTP and WebSocket', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const hosts = [
      `grpc://127.0.0.1:${ports[0]}`,
      `http://127.0.0.1:${ports[1]}`,
      `ws://127.0.0.1:${ports[2]}`,
    ];
    // Nothing listens yet: one attempt fails at once, as the client did before retries.
    for (const host of hosts) {
      const once = new Client({ host });
      await expect(once.post('/upper', [{ text: 'x' }]), host).rejects.toMatchObject({
        code: 'unavailable',
      });
      once.close();
    }
    const t0 = Date.now();
    const clients = hosts.map((host) => new Client({ host }));
    const posts = clients.map((c) =>
      c.post('/upper', [{ text: 'eventually' }], {
        maxAttempts: 30,
        initialBackoffMs: 100,
        maxBackoffMs: 400,
        backoffMultiplier: 2,
      }),
    );
    // The runtime comes up a moment later.
    await new Promise((r) => setTimeout(r, 600));
    const p = runMarie(
      executorArgs(REFERENCE, { protocols: ['grpc', 'http', 'websocket'], ports }),
    );
    started.push(p);
    const answers = await Promise.all(posts);
    for (const [i, docs] of answers.entries()) expect(docs[0]!.text, hosts[i]).toBe('EVENTUALLY');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    for (const c of clients) c.close();
    await waitReady(p, 3);
    p.child.kill('SIGTERM');
    await p.exited;
  }, 60_000);

  it('gives up after max_attempts with the last error, and refuses a bad setting naming it', async () => {
    const host = `grpc://127.0.0.1:${await freePort()}`;
    const c = new Client({ host });
    const t0 = Date.now();
    await expect(
      c.post('/upper', [{ text: 'x' }], {
        maxAttempts: 3,
        initialBackoffMs: 100,
        maxBackoffMs: 100,
      }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    // Two waits of ~100 ms (jittered +-20%) between three attempts.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    await expect(c.post('/upper', [], { maxAttempts: 0 })).rejects.toMatchObject({
      code: 'invalid_argument',
      field: 'maxAttempts',
    });
    await expect(c.post('/upper', [], { backoffMultiplier: 0.5 })).rejects.toThrow(
      'backoffMultiplier must be a number >= 1, got 0.5',
    );
    c.close();
  });
});

describe('progress and logs on the command line', () => {
  it('`marie post --progress` draws a bar per answered request; JSON lines of the answer on stdout', async () => {
    const p = runMarie(['executor', '--uses', REFERENCE, '--host', '127.0.0.1', '--port', '0']);
    started.push(p);
    const [ready] = await waitReady(p);
    const docs = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ text: `doc ${i}` })));
    const { stdout, stderr } = await run(process.execPath, [
      MARIE_BIN,
      'post',
      ready!.slice('ready '.length),
      '/upper',
      '--data',
      docs,
      '--request-size',
      '1',
      '--progress',
    ]);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((d) => d.text)).toEqual(Array.from({ length: 10 }, (_, i) => `DOC ${i}`));
    // Not a terminal: cli-progress writes the bar as lines; the last one is complete.
    expect(stderr).toMatch(/\/upper \[[=\u2588-]*\] 10\/10 requests/);
    p.child.kill('SIGTERM');
    await p.exited;
  });

  it('--log-format pretty writes readable lines; a bad --log-level or --log-format is a usage error', async () => {
    const pretty = runMarie(executorArgs(REFERENCE, {}, '--log-format', 'pretty'), {
      env: { MARIE_LOG_LEVEL: 'info' },
    });
    started.push(pretty);
    await waitReady(pretty);
    pretty.child.kill('SIGTERM');
    expect((await pretty.exited).code).toBe(0);
    expect(pretty.stderr()).toMatch(/INFO.*: serving/);
    expect(pretty.stderr()).not.toMatch(/^\{"level"/m);
    for (const [flag, value, message] of [
      ['--log-level', 'loud', /--log-level: "loud" is not a log level \(fatal, error/],
      ['--log-format', 'xml', /--log-format: "xml" is not json or pretty/],
    ] as const) {
      const bad = runMarie(['executor', '--uses', REFERENCE, flag, value]);
      expect((await bad.exited).code).toBe(2);
      expect(bad.stderr()).toMatch(message);
    }
  });
});
