// Hot reload: `marie executor --reload` under a steady load while its module (and a module it
// imports) is rewritten, broken and fixed again; and a Flow's `reload: true`. No request may fail,
// every answer comes from one whole version, versions only move forward, a broken version is
// refused with its reason while the old one keeps serving, and the old version is closed once it
// has drained.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executorArgs, type MarieProcess, runMarie, waitReady } from '../support/marie-process.js';

let dir: string;
const started: MarieProcess[] = [];

// Inside tests/ so that the executor's imports (@marie/core) resolve from the repository.
beforeAll(() => {
  dir = mkdtempSync(join(import.meta.dirname, '.reload-'));
});
afterAll(() => {
  for (const p of started) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The executor's module at `version`; its close() leaves a line in closed.txt. */
function writeExecutor(folder: string, version: string, broken = false): void {
  writeFileSync(
    join(folder, 'greeter.ts'),
    `import { appendFileSync } from 'node:fs';
import { Executor, requests } from '@marie/core';
import { type DocList, TextDoc } from '@marie/docs';
import { mark } from './mark.ts';

export class Greeter extends Executor {
  @requests({ on: '/greet', requestSchema: TextDoc, responseSchema: TextDoc })
  async greet(docs: DocList<TextDoc>) {
    await new Promise((r) => setTimeout(r, 5));
    for (const d of docs) d.text = \`\${d.text} \${mark('${version}')}\`;
  }

  override async close() {
    appendFileSync(${JSON.stringify(join(folder, 'closed.txt'))}, '${version}\\n');
  }
}
${broken ? 'export const oops = ;\n' : ''}`,
  );
}

function writeMark(folder: string, decoration: string): void {
  writeFileSync(
    join(folder, 'mark.ts'),
    `export const mark = (v: string) => \`${decoration}\${v}${decoration}\`;\n`,
  );
}

/** Posts without pause on `lanes` connections until stopped; every answer and failure kept. */
function load(address: string, lanes = 4) {
  const seen: string[][] = Array.from({ length: lanes }, () => []);
  const failures: string[] = [];
  let running = true;
  const done = Promise.all(
    seen.map(async (answers, lane) => {
      const client = new Client({ host: address });
      while (running) {
        try {
          const [doc] = await client.post('/greet', [{ text: `l${lane}` }]);
          answers.push(String(doc!.text));
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      client.close();
    }),
  );
  return {
    seen,
    failures,
    async stop() {
      running = false;
      await done;
    },
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not yet after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const version = (answer: string) => /(v\d)/.exec(answer)?.[1];

describe('hot reload', () => {
  it('marie executor --reload: no request fails across reloads, a broken version keeps the old one serving, the old one drains then closes', async () => {
    const folder = join(dir, 'executor');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder);
    writeMark(folder, '');
    writeExecutor(folder, 'v1');
    writeFileSync(join(folder, 'config.yml'), 'jtype: Greeter\npy_modules: [greeter.ts]\n');
    const p = runMarie(executorArgs(join(folder, 'config.yml'), {}, '--reload'));
    started.push(p);
    const [ready] = await waitReady(p);
    const traffic = load(ready!.slice('ready '.length));
    const reloads = () =>
      p
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('reloaded')).length;
    const latest = () => traffic.seen.flat().at(-1) ?? '';
    await until('answers from v1', () => version(latest()) === 'v1');

    writeExecutor(folder, 'v2');
    await until('v2 serving', () => version(latest()) === 'v2');
    expect(reloads()).toBe(1);
    // The old version finished its requests and was closed.
    await until('v1 closed', () => existsSync(join(folder, 'closed.txt')));
    expect(readFileSync(join(folder, 'closed.txt'), 'utf8')).toBe('v1\n');

    // A module the executor imports is watched too.
    writeMark(folder, '*');
    await until('the new mark', () => latest().includes('*v2*'));

    // A broken version: refused, said why, the previous one keeps answering.
    writeExecutor(folder, 'v3', true);
    await until('the failure said', () => /reload failed/.test(p.stderr()));
    expect(p.stderr()).toMatch(/reload failed, still serving the previous version: .*greeter\.ts/);
    const before = traffic.seen.flat().length;
    await until(
      'more answers after the failed reload',
      () => traffic.seen.flat().length > before + 20,
    );
    expect(version(latest())).toBe('v2');

    writeExecutor(folder, 'v4');
    await until('v4 serving', () => version(latest()) === 'v4');
    await traffic.stop();

    expect(traffic.failures).toEqual([]);
    const all = traffic.seen.flat();
    expect(all.length).toBeGreaterThan(100);
    // Each lane saw versions only move forward, and never one that failed to load.
    for (const answers of traffic.seen) {
      const order = answers.map(version);
      expect(order).not.toContain('v3');
      const firsts = order.filter((v, i) => v !== order[i - 1]);
      expect(firsts).toEqual([...firsts].sort());
    }
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    // Every version that served was closed exactly once.
    expect(readFileSync(join(folder, 'closed.txt'), 'utf8').trim().split('\n').sort()).toEqual([
      'v1',
      'v2',
      'v2',
      'v4',
    ]);
  }, 90_000);

  it("a Flow's `reload: true` reloads its replicas: the change reaches clients of the gateway", async () => {
    const folder = join(dir, 'flow');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder);
    writeMark(folder, '');
    writeExecutor(folder, 'v1');
    writeFileSync(join(folder, 'config.yml'), 'jtype: Greeter\npy_modules: [greeter.ts]\n');
    writeFileSync(
      join(folder, 'flow.yml'),
      'jtype: Flow\nwith: { port: 0 }\nexecutors:\n  - { name: greeter, uses: config.yml, reload: true }\n',
    );
    const p = runMarie(['flow', '--uses', join(folder, 'flow.yml')]);
    started.push(p);
    const [ready] = await waitReady(p, 1, 30_000);
    const client = new Client({ host: ready!.slice('ready '.length) });
    expect((await client.post('/greet', [{ text: 'a' }]))[0]!.text).toBe('a v1');
    writeExecutor(folder, 'v2');
    const deadline = Date.now() + 15_000;
    let text = '';
    while (Date.now() < deadline) {
      text = String((await client.post('/greet', [{ text: 'a' }]))[0]!.text);
      if (text === 'a v2') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toBe('a v2');
    client.close();
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
