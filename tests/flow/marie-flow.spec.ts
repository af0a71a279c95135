import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { describe, expect, it } from 'vitest';
import { runMarie, waitReady } from '../support/marie-process.js';

/** Processes whose command line mentions `token` (our children carry the flow's names). */
function processesWith(token: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('marie flow', () => {
  it('serves the gateway from YAML; SIGTERM under load: in-flight requests complete, every close() runs, no child remains', async () => {
    const tag = `flowtest${process.pid}x${Date.now()}`;
    const markers = mkdtempSync(join(tmpdir(), 'marie-flow-markers-'));
    const p = runMarie(['flow', '--uses', join(import.meta.dirname, 'fixtures', 'flow.yml')], {
      env: { FLOW_TAG: tag, MARIE_WORKSPACE: markers, MARKER_DIR: markers },
    });
    const lines = await waitReady(p, 2, 60_000);
    expect(lines.map((l) => l.replace(/:\d+$/, ''))).toEqual([
      'ready grpc://127.0.0.1',
      'ready http://127.0.0.1',
    ]);
    expect(processesWith(tag)).toHaveLength(3); // 2 replicas of first, 1 of second

    const client = new Client({ host: lines[0]!.slice('ready '.length) });
    expect((await client.post('/slow', [{}], { parameters: { ms: 1 } }))[0]!.text).toBe('finished');
    const inflight = Array.from({ length: 8 }, () =>
      client.post('/slow', [{}], { parameters: { ms: 400 } }),
    );
    await new Promise((r) => setTimeout(r, 150));
    p.child.kill('SIGTERM');
    const done = await Promise.all(inflight);
    expect(done.map((d) => d[0]!.text)).toEqual(Array(8).fill('finished'));
    expect((await p.exited).code).toBe(0);
    client.close();
    expect(readFileSync(join(markers, 'first.txt'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(readFileSync(join(markers, 'second.txt'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(processesWith(tag)).toEqual([]);
  }, 120_000);

  it('refuses a broken flow with one line and exit code 2', async () => {
    const p = runMarie(['flow', '--uses', join(import.meta.dirname, 'fixtures', 'missing.yml')]);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toMatch(/^marie flow: .*missing\.yml: cannot read the config \(ENOENT\)$/m);
  });
});
