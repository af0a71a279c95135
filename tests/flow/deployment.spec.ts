import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@marie/client';
import { createDataRequest, StatusCode } from '@marie/core';
import { Deployment } from '@marie/flow';
import { describe, expect, it } from 'vitest';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const workspace = () => mkdtempSync(join(tmpdir(), 'marie-flow-'));

function seenIn(root: string): string[] {
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.startsWith('seen-'))
        lines.push(...readFileSync(p, 'utf8').split('\n').filter(Boolean));
    }
  };
  walk(root);
  return lines;
}

async function pool<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

describe('Deployment (replicas and shards as processes)', () => {
  it('2 replicas: 100 requests, each processed exactly once, both replicas used', async () => {
    const root = workspace();
    await using dep = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'scale',
      replicas: 2,
      env: { MARIE_WORKSPACE: root },
    }).start();
    const answers = await pool(100, 8, (i) =>
      dep.send(
        createDataRequest({ endpoint: '/work', requestId: `req-${i}`, parameters: { ms: 2 } }),
      ),
    );
    expect(answers.every((a) => a.header.status?.code !== StatusCode.ERROR)).toBe(true);
    const pids = new Set(answers.map((a) => (a.parameters.__results__ as any).scale.pid));
    expect([...pids].sort()).toEqual(dep.pids()[0]!.slice().sort());
    const seen = seenIn(root);
    expect(seen).toHaveLength(100);
    expect(new Set(seen).size).toBe(100);
  }, 60_000);

  it('10 shards: ANY answers one shard, ALL answers all ten merged by id', async () => {
    await using dep = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'sharded',
      shards: 10,
      polling: { '/shard': 'ALL', '*': 'ANY' },
      env: { MARIE_WORKSPACE: workspace() },
    }).start();
    const all = await dep.post('/shard', []);
    expect(all.map((d) => d.id).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `shard-${i}`).sort(),
    );
    const anyDep = await dep.send(createDataRequest({ endpoint: '/work' }));
    expect(anyDep.docs).toHaveLength(0);
    const byAny = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'sharded-any',
      shards: 2,
      polling: 'ANY',
      env: { MARIE_WORKSPACE: workspace() },
    }).start();
    try {
      expect(await byAny.post('/shard', [])).toHaveLength(1);
    } finally {
      await byAny.close();
    }
  }, 120_000);

  it('survives kill -9 of one of 3 replicas during 500 requests at 16 in flight, and brings it back', async () => {
    const root = workspace();
    await using dep = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'killed',
      replicas: 3,
      env: { MARIE_WORKSPACE: root },
    }).start();
    const victim = dep.pids()[0]![1]!;
    let done = 0;
    const answers = await pool(500, 16, async (i) => {
      if (++done === 100) process.kill(victim, 'SIGKILL');
      return dep.send(
        createDataRequest({ endpoint: '/work', requestId: `k-${i}`, parameters: { ms: 3 } }),
      );
    });
    const failed = answers.filter((a) => a.header.status?.code === StatusCode.ERROR);
    expect(failed).toHaveLength(0);
    expect(alive(victim)).toBe(false);
    // The replica comes back as a new process and serves again.
    for (let i = 0; i < 100 && (dep.pids()[0]![1] === victim || !dep.shards[0]![1]!.ready); i++)
      await sleep(100);
    const back = dep.pids()[0]![1]!;
    expect(back).not.toBe(victim);
    expect(await dep.shards[0]![1]!.client!.isReady()).toBe(true);
    // Every request was served (one served twice at most if it died with its answer unsent).
    expect(new Set(seenIn(root)).size).toBe(500);
  }, 120_000);

  it('exitOnExceptions: the replica answers the error, exits and is restarted', async () => {
    await using dep = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'fragile',
      exitOnExceptions: ['FatalError'],
      env: { MARIE_WORKSPACE: workspace() },
    }).start();
    const before = dep.pids()[0]![0]!;
    const res = await dep.send(createDataRequest({ endpoint: '/fatal' }));
    expect(res.header.status).toMatchObject({
      code: StatusCode.ERROR,
      exception: { name: 'FatalError', args: [`device lost in ${before}`] },
    });
    for (let i = 0; i < 100 && (dep.pids()[0]![0] === before || !dep.shards[0]![0]!.ready); i++)
      await sleep(100);
    expect(alive(before)).toBe(false);
    const after = await dep.send(createDataRequest({ endpoint: '/work' }));
    expect((after.parameters.__results__ as any).fragile.pid).not.toBe(before);
  }, 60_000);

  it('Deployment.fromConfig, served on its own address over gRPC and HTTP', async () => {
    await using dep = await (
      await Deployment.fromConfig(fixture('deployment.yml'), {
        env: { MARIE_WORKSPACE: workspace() },
      })
    ).start();
    expect(dep.pids()[0]).toHaveLength(2);
    expect(dep.addresses.map((a) => a.replace(/:\d+$/, ''))).toEqual([
      'grpc://127.0.0.1',
      'http://127.0.0.1',
    ]);
    for (const address of dep.addresses) {
      const client = new Client({ host: address });
      const res = await client.post('/shard', []);
      expect(
        res.map((d) => d.id),
        address,
      ).toEqual(['shard-0']);
      client.close();
    }
  }, 60_000);

  it('close() stops every replica; killing the supervisor with SIGKILL leaves no orphan', async () => {
    const dep = await new Deployment({
      uses: fixture('scale.yml'),
      name: 'closing',
      replicas: 2,
      env: { MARIE_WORKSPACE: workspace() },
    }).start();
    const pids = dep.pids().flat() as number[];
    await dep.close();
    expect(pids.some(alive)).toBe(false);

    const parent = spawn(
      process.execPath,
      [fixture('orphan-parent.mjs'), fixture('scale.yml'), workspace()],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const children = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
      });
      parent.on('exit', (code) => reject(new Error(`parent exited ${code}`)));
    });
    expect(children.every(alive)).toBe(true);
    parent.kill('SIGKILL');
    for (let i = 0; i < 100 && children.some(alive); i++) await sleep(100);
    expect(children.some(alive)).toBe(false);
  }, 120_000);
});
