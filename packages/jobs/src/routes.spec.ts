import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../storage/test/support/postgres.js';
import { Jobs } from './jobs.js';
import { jobRoutes } from './routes.js';
import { JobWorker } from './worker.js';

let drop: () => Promise<void>;
let jobs: Jobs;
let app: FastifyInstance;
let base: string;
let worker: JobWorker;

beforeAll(async () => {
  const t = await testDatabase('marie_jobs_http');
  drop = t.drop;
  jobs = new Jobs({ connectionString: t.url });
  await jobs.start();
  // A worker on one queue: a run that takes a moment, so that a stream sees it active.
  worker = new JobWorker(jobs, {
    queues: ['quick'],
    run: async (job) => {
      await new Promise((r) => setTimeout(r, 600));
      return { results: { ok: job.data.ref_id }, docs: [] };
    },
  });
  await worker.start();
  app = Fastify();
  await app.register(jobRoutes(jobs, { pollMs: 50 }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
  await worker?.stop({ timeoutMs: 1000 });
  await jobs?.stop({ timeoutMs: 2000 });
  await drop?.();
});

const post = (body: unknown, raw?: string) =>
  fetch(`${base}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });

describe('the job API over HTTP', () => {
  it('POST answers 202 with the job id; the same idempotency key the same job; a bad body 422 naming the field', async () => {
    const a = await post({ queue: 'idle', ref_id: 'x', idempotency_key: 'http-1' });
    expect(a.status).toBe(202);
    const { job_id } = (await a.json()) as { job_id: string };
    const b = await post({ queue: 'idle', idempotency_key: 'http-1' });
    expect(await b.json()).toEqual({ job_id, created: false });
    const bad = await post({ endpoint: '/x', retry_limit: 'two' });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ field: 'retry_limit' });
    const none = await post({});
    expect(await none.json()).toEqual({
      detail: 'endpoint: an endpoint or a queue is required',
      field: 'endpoint',
    });
    expect((await post(undefined, '{"queue": ')).status).toBe(400);
  });

  it('GET a job, 404 for an unknown one; list by state and queue; DELETE cancels', async () => {
    const { job_id } = (await (await post({ queue: 'idle', ref_id: 'y' })).json()) as {
      job_id: string;
    };
    const got = await fetch(`${base}/api/v1/jobs/${job_id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({
      job_id,
      queue: 'idle',
      state: 'created',
      ref_id: 'y',
    });
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
      const missing = await fetch(`${base}/api/v1/jobs/${id}`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ detail: `no job ${id}` });
    }
    const list = (await (
      await fetch(`${base}/api/v1/jobs?queue=idle&state=created&limit=1`)
    ).json()) as {
      jobs: { job_id: string }[];
      next: string | null;
    };
    expect(list.jobs.map((j) => j.job_id)).toEqual([job_id]);
    expect(list.next).toBe(job_id);
    const badState = await fetch(`${base}/api/v1/jobs?state=done`);
    expect(badState.status).toBe(422);
    expect(await badState.json()).toMatchObject({ field: 'state' });
    const del = await fetch(`${base}/api/v1/jobs/${job_id}`, { method: 'DELETE' });
    expect(await del.json()).toMatchObject({ job_id, state: 'cancelled' });
    expect((await fetch(`${base}/api/v1/jobs/nope`, { method: 'DELETE' })).status).toBe(404);
  });

  it("streams a job's state changes as Server-Sent Events until it ends", async () => {
    const { job_id } = (await (await post({ queue: 'quick', ref_id: 'z' })).json()) as {
      job_id: string;
    };
    const res = await fetch(`${base}/api/v1/jobs/${job_id}/events`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text(); // the stream ends with the job
    const states = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).state);
    expect(states[0]).toMatch(/created|active/);
    expect(states).toContain('active');
    expect(states.at(-1)).toBe('completed');
    expect(JSON.parse([...text.matchAll(/^data: (.*)$/gm)].at(-1)![1]!).result).toEqual({
      results: { ok: 'z' },
      docs: [],
    });
    expect((await fetch(`${base}/api/v1/jobs/nope/events`)).status).toBe(404);
  });
});
