// The client's job methods against the job API served over real HTTP (fastify with @marie/jobs'
// routes), on a real Postgres, with a worker running the jobs.
import { Client } from '@marie/client';
import { Jobs, JobWorker, jobRoutes } from '@marie/jobs';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';

let drop: () => Promise<void>;
let jobs: Jobs;
let app: FastifyInstance;
let worker: JobWorker;
let client: Client;

beforeAll(async () => {
  const t = await testDatabase('marie_jobs_client');
  drop = t.drop;
  jobs = new Jobs({ connectionString: t.url });
  worker = new JobWorker(jobs, {
    queues: ['pages'],
    run: async (job) => {
      if (job.data.parameters.fail) throw new Error('unreadable page');
      await new Promise((r) => setTimeout(r, 300));
      return { results: { pages: 2 }, docs: [] };
    },
  });
  await worker.start();
  app = Fastify();
  await app.register(jobRoutes(jobs, { pollMs: 50 }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  // A gRPC client of the gateway, with its HTTP address for the job API.
  client = new Client({ host: 'grpc://127.0.0.1:1', jobs: `http://127.0.0.1:${port}` });
});

afterAll(async () => {
  client?.close();
  await app?.close();
  await worker?.stop({ timeoutMs: 1000 });
  await jobs?.stop({ timeoutMs: 2000 });
  await drop?.();
});

describe('client job methods', () => {
  it('submitJob, job, waitForJob with progress, jobs and cancelJob', async () => {
    const { job_id, created } = await client.submitJob({ queue: 'pages', ref_id: 'scan-1' });
    expect(created).toBe(true);
    expect((await client.job(job_id)).ref_id).toBe('scan-1');
    const seen: string[] = [];
    const done = await client.waitForJob(job_id, {
      onProgress: (j) => seen.push(j.state),
      timeoutMs: 20_000,
    });
    expect(done).toMatchObject({
      state: 'completed',
      attempts: 1,
      result: { results: { pages: 2 } },
    });
    expect(seen.at(-1)).toBe('completed');
    expect(seen).toContain('active');
    const page = await client.jobs({ queue: 'pages', state: 'completed' });
    expect(page.jobs.map((j) => j.job_id)).toContain(job_id);
    const idle = await client.submitJob({ queue: 'nobody-works-here' });
    expect((await client.cancelJob(idle.job_id)).state).toBe('cancelled');
  });

  it('says what is wrong: a bad body names its field, an unknown job is not_found, a failed job ends failed', async () => {
    await expect(client.submitJob({ queue: 'pages', retry_limit: -1 })).rejects.toMatchObject({
      code: 'invalid_argument',
      field: 'retry_limit',
    });
    await expect(client.job('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      code: 'not_found',
    });
    const { job_id } = await client.submitJob({
      queue: 'pages',
      parameters: { fail: true },
      retry_limit: 0,
    });
    const failed = await client.waitForJob(job_id, { timeoutMs: 20_000 });
    expect(failed).toMatchObject({ state: 'failed', error: { message: 'unreadable page' } });
    await expect(client.waitForJob('00000000-0000-4000-8000-000000000001')).rejects.toMatchObject({
      code: 'not_found',
    });
    // Without an HTTP address the job methods say where to give one.
    expect(() => new Client({ host: 'grpc://127.0.0.1:1' }).job('x')).toThrow(
      /ClientOptions\.jobs/,
    );
  });
});
