// The app images' Dockerfiles, read as a builder reads them. No engine runs here (CI included), so
// tools/image-smoke.sh is what builds and runs them (buildah, by hand); this keeps what each
// Dockerfile must say from drifting between those runs: a build stage that bundles only this
// app, a distroless runtime stage, a non-root numeric user, a HEALTHCHECK and an entrypoint that
// exist in the image, SIGTERM as the stop signal.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { portOf, ROOT, runMarie, waitReady } from '../support/marie-process.js';

/** Instructions with continuation lines joined; comments dropped. */
function instructions(file: string): { op: string; args: string }[] {
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

const APPS = ['text-extraction', 'page-orientation', 'gateway'];

describe('app Dockerfiles', () => {
  for (const app of APPS)
    it(`apps/${app}/Dockerfile: bundles only this app onto distroless, non-root, health-checked`, () => {
      const ins = instructions(join(ROOT, 'apps', app, 'Dockerfile'));
      const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
      expect(froms).toEqual([
        'node:24-bookworm-slim AS build',
        'gcr.io/distroless/cc-debian12:nonroot',
      ]);
      const runs = ins.filter((i) => i.op === 'RUN').map((i) => i.args);
      expect(runs.some((r) => r.includes(`tools/bundle-app.mjs apps/${app} /out`))).toBe(true);
      // The runtime stage (after the second FROM) has no RUN: distroless has no shell.
      const runtime = ins.slice(ins.findIndex((i) => i.args === froms[1]));
      expect(runtime.filter((i) => i.op === 'RUN')).toEqual([]);
      expect(runtime.find((i) => i.op === 'USER')?.args).toBe('65532:65532');
      expect(runtime.find((i) => i.op === 'STOPSIGNAL')?.args).toBe('SIGTERM');
      const health = runtime.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
      expect(health).toMatch(/CMD \["marie", "ping", "grpc:\/\/127\.0\.0\.1:8080"/);
      expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.args).toMatch(
        /^\["marie", "(executor|flow)"/,
      );
      // `marie` is the CLI's bin, linked into the image; its shebang's env and node come along.
      expect(runs.join(' ')).toContain(
        'ln -s /app/node_modules/@marie/cli/bin/marie.js /stage/usr/local/bin/marie',
      );
      expect(runs.join(' ')).toContain('cp /usr/bin/env /stage/usr/bin/env');
      expect(readFileSync(join(ROOT, 'packages/cli/bin/marie.js'), 'utf8')).toMatch(
        /^#!\/usr\/bin\/env node\n/,
      );
      // The build stage up to the bundle is the same in every app's Dockerfile (one cached layer).
      const shared = ins.slice(
        0,
        ins.findIndex((i) => i.args.includes('bundle-app.mjs')),
      );
      const text = instructions(join(ROOT, 'apps', APPS[0]!, 'Dockerfile'));
      expect(shared).toEqual(text.slice(0, shared.length));
      expect(existsSync(join(ROOT, 'apps', app, 'config.yml'))).toBe(true);
    });

  it('.dockerignore keeps build outputs and scratch folders out of the context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['**/node_modules', '**/dist', '.git', '.scratch', '.marie'])
      expect(ignored).toContain(p);
  });
});

describe('examples/own-image, the user path on the runtime image', () => {
  it('is FROM the runtime image, COPYs executor.ts and config.yml, runs marie executor', () => {
    const ins = instructions(join(ROOT, 'examples/own-image/Dockerfile'));
    expect(ins.map((i) => `${i.op} ${i.args}`)).toEqual([
      'FROM marie/runtime:0.1.0',
      'COPY executor.ts config.yml ./',
      'ENTRYPOINT ["marie", "executor", "--uses", "config.yml"]',
    ]);
    // The runtime image's workdir is where its Flow sits; the user's files land there.
    const runtime = instructions(join(ROOT, 'Dockerfile'));
    expect(runtime.filter((i) => i.op === 'WORKDIR').at(-1)?.args).toBe('/app/flow');
    expect(parse(readFileSync(join(ROOT, 'examples/own-image/config.yml'), 'utf8'))).toEqual({
      jtype: 'Shouter',
      py_modules: ['executor.ts'],
    });
  });

  it('serves its executor as the ENTRYPOINT does (TypeScript as is) and stops on SIGTERM', async () => {
    const p = runMarie(['executor', '--uses', 'config.yml', '--host', '127.0.0.1', '--port', '0'], {
      cwd: join(ROOT, 'examples/own-image'),
    });
    try {
      const [line] = await waitReady(p, 1, 60_000);
      const client = new Client({ host: `grpc://127.0.0.1:${portOf(line!)}` });
      const [doc] = await client.post('/default', [{ text: 'hello from my image' }]);
      client.close();
      expect((doc?.tags as Record<string, unknown> | undefined)?.shouted).toBe(
        'HELLO FROM MY IMAGE',
      );
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
