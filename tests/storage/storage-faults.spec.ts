// Postgres restarted under load: 200 job-tracked requests at 8 in flight through a served
// executor (a real `marie executor` process over gRPC), the private cluster restarted in the
// middle. Every job must end in the terminal state that matches what its client got, and no
// store may be half written.
import { join } from 'node:path';
import { Client } from '@marie/client';
import { Storage } from '@marie/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, throwawayCluster } from '../../packages/storage/test/support/postgres.js';
import { type MarieProcess, runMarie, waitReady } from '../support/marie-process.js';

const PASSWORD = 'Pw-7d1f-not-in-logs';
const DOCS_PER_REQUEST = 5;

describe('Postgres restarted during 200 job-tracked requests', () => {
  let cluster: Cluster;
  let marie: MarieProcess;
  let client: Client;

  beforeAll(async () => {
    cluster = await throwawayCluster();
    marie = runMarie(
      ['executor', '--uses', join(import.meta.dirname, 'fixtures/persistent.yml'), '--port', '0'],
      {
        env: {
          PG_PORT: String(cluster.port),
          POSTGRES_PASSWORD: PASSWORD,
          MARIE_LOG_LEVEL: 'info',
        },
      },
    );
    const [line] = await waitReady(marie, 1, 60_000);
    client = new Client({ host: line!.slice('ready '.length) });
  }, 90_000);

  afterAll(async () => {
    client?.close();
    marie?.child.kill('SIGTERM');
    await marie?.exited;
    cluster?.destroy();
  });

  it('every job ends as its client saw it; every store is whole or absent', async () => {
    const total = 200;
    const outcomes = new Map<string, 'ok' | 'error'>();
    const errors = new Map<string, string>();
    let next = 0;
    let restarted = false;
    let restart: Promise<void> | undefined;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        if (i === 60 && !restarted) {
          restarted = true;
          // Restart in the background while the workers keep sending.
          restart = cluster.restart('fast');
        }
        const jobId = `job-${i}`;
        const docs = Array.from({ length: DOCS_PER_REQUEST }, (_, k) => ({
          id: `${jobId}-d${k}`,
          content: { i, k },
        }));
        try {
          await client.post('/store', docs, {
            parameters: { job_id: jobId, ref_id: jobId, ref_type: 'fault', fail: i % 25 === 7 },
          });
          outcomes.set(jobId, 'ok');
        } catch (err) {
          outcomes.set(jobId, 'error');
          errors.set(jobId, String(err).slice(0, 160));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await restart;
    expect(restarted).toBe(true);

    const s = new Storage({ psql: { enabled: true, url: cluster.url } });
    await s.open();
    try {
      const mismatches: string[] = [];
      const partial: string[] = [];
      for (const [jobId, outcome] of outcomes) {
        const rec = await s.jobs.get(jobId);
        const want = outcome === 'ok' ? 'SUCCEEDED' : 'FAILED';
        if (rec?.status !== want)
          mismatches.push(
            `${jobId}: client ${errors.get(jobId) ?? outcome}, record ${rec?.status}`,
          );
        const rows = (await s.documents.byRef(jobId, 'fault')).length;
        if (rows !== 0 && rows !== DOCS_PER_REQUEST) partial.push(`${jobId}: ${rows} rows`);
      }
      const failed = [...outcomes.values()].filter((o) => o === 'error').length;
      const retries = (marie.stderr() + marie.stdout())
        .split('\n')
        .filter((l) => l.includes('retrying')).length;
      console.log(
        `storage faults: ${total} jobs, ${total - failed} succeeded, ${failed} failed (8 asked to fail), ${retries} retries logged across the restart`,
      );
      // A dead executor explains every mismatch at once: say how it ended.
      if (mismatches.length && marie.child.exitCode !== null)
        console.log(
          `the executor exited (${marie.child.exitCode}):\n${marie.stderr().slice(-3000)}`,
        );
      expect(outcomes.size).toBe(total);
      expect(mismatches).toEqual([]);
      expect(partial).toEqual([]);
      // The ones asked to fail stored their rows, then failed: FAILED, with the method's error.
      expect((await s.jobs.get('job-7'))?.error?.message).toBe(
        `asked to fail after storing ${DOCS_PER_REQUEST}`,
      );
      // The restart was felt and ridden out: the executor logged retries.
      expect(marie.stderr() + marie.stdout()).toMatch(/retrying/);
      expect(marie.stderr() + marie.stdout()).not.toContain(PASSWORD);
    } finally {
      await s.close();
    }
  }, 120_000);
});
