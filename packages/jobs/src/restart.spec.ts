// Postgres restarted in the middle of a run (a throwaway cluster, never the shared server): jobs
// submitted before, during and after the restart all complete; none is lost. A submit that meets
// the server down fails with the cause (the caller retries it); one that got its job id back has
// its job in the database.
import { afterAll, describe, expect, it } from 'vitest';
import { throwawayCluster } from '../../storage/test/support/postgres.js';
import { Jobs } from './jobs.js';
import { JobWorker } from './worker.js';

let cluster: Awaited<ReturnType<typeof throwawayCluster>> | undefined;
let jobs: Jobs | undefined;
let worker: JobWorker | undefined;

afterAll(async () => {
  await worker?.stop({ timeoutMs: 1000 }).catch(() => {});
  await jobs?.stop({ timeoutMs: 2000 }).catch(() => {});
  cluster?.destroy();
});

describe('Postgres restarts', () => {
  it('no job is lost when the server restarts in the middle of a run', async () => {
    cluster = await throwawayCluster();
    jobs = new Jobs({ connectionString: cluster.url, superviseIntervalSeconds: 1 });
    let runs = 0;
    worker = new JobWorker(jobs, {
      queues: { restart: { concurrency: 4 } },
      run: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 20));
        return { results: {}, docs: [] };
      },
    });
    await worker.start();
    const accepted: string[] = [];
    let refused = 0;
    const submitSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        // What a client does with a refused submit: try again, with the same idempotency key.
        const key = `restart-${accepted.length}-${i}`;
        for (;;) {
          try {
            accepted.push(
              (
                await jobs!.submit({
                  queue: 'restart',
                  idempotency_key: key,
                  expire_in: 5,
                  retry_delay: 0,
                })
              ).job_id,
            );
            break;
          } catch {
            refused++;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }
    };
    await submitSome(50);
    const during = submitSome(50);
    await cluster.restart('fast');
    await during;
    await submitSome(50);
    const unique = new Set(accepted);
    expect(unique.size).toBe(150);
    const end = Date.now() + 60_000;
    let done = 0;
    while (Date.now() < end) {
      const states = await Promise.all(
        [...unique].map((id) => jobs!.get(id).catch(() => undefined)),
      );
      done = states.filter((s) => s?.state === 'completed').length;
      if (done === 150) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(
      `restart: 150 jobs accepted (${refused} submits refused while the server was down and retried), ${done} completed, ${runs} runs`,
    );
    expect(done).toBe(150);
  }, 120_000);
});
