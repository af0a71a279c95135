import { ErrorCode, extractContext, MarieError, SpanKind, traced } from '@marie/core';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { JOB_STATES, type JobState, type Jobs, type JobView, TERMINAL_STATES } from './jobs.js';
import { JobSubmission } from './submission.js';

const JobId = Type.Object({ id: Type.String({ description: 'a job id (uuid)' }) });
const Detail = Type.Object({ detail: Type.String(), field: Type.Optional(Type.String()) });
const View = Type.Object(
  {
    job_id: Type.String(),
    queue: Type.String(),
    state: Type.Union(JOB_STATES.map((s) => Type.Literal(s))),
    attempts: Type.Integer(),
    retry_limit: Type.Integer(),
    priority: Type.Integer(),
    endpoint: Type.Union([Type.String(), Type.Null()]),
    asset_key: Type.Union([Type.String(), Type.Null()]),
    ref_id: Type.Union([Type.String(), Type.Null()]),
    ref_type: Type.Union([Type.String(), Type.Null()]),
    created_on: Type.String(),
    start_after: Type.String(),
    started_on: Type.Union([Type.String(), Type.Null()]),
    completed_on: Type.Union([Type.String(), Type.Null()]),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(
      Type.Object({ name: Type.Optional(Type.String()), message: Type.String() }),
    ),
  },
  { $id: 'JobView' },
);

export interface JobRoutesOptions {
  /** How often an events stream looks at its job (ms, 250). */
  pollMs?: number;
}

/**
 * The job API under `/api/v1/jobs` as a fastify plugin: submit (202), get, list, cancel, and a
 * job's state changes as Server-Sent Events. Route schemas describe it for OpenAPI; bodies are
 * checked by `Jobs.submit`, whose errors answer 422 naming the field.
 */
export function jobRoutes(jobs: Jobs, options: JobRoutesOptions = {}) {
  const pollMs = options.pollMs ?? 250;
  return async (app: FastifyInstance): Promise<void> => {
    // The schemas document the API; Jobs checks the input itself (422 with the field).
    app.setValidatorCompiler(() => () => true);
    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      if (err instanceof MarieError && err.code === ErrorCode.InvalidArgument)
        return reply
          .code(422)
          .send({ detail: err.message, ...(err.field ? { field: err.field } : {}) });
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
      return reply
        .code(status)
        .send({ detail: status >= 500 ? `internal error: ${err.message}` : err.message });
    });
    // GET and DELETE of one job: its view, or 404 naming the id.
    const byId =
      (find: (id: string) => Promise<JobView | undefined>) =>
      async (req: FastifyRequest, reply: FastifyReply) => {
        const { id } = req.params as { id: string };
        return (await find(id)) ?? notFound(reply, id);
      };
    const notFound = (reply: FastifyReply, id: string) =>
      reply.code(404).send({ detail: `no job ${id}` });

    app.post(
      '/api/v1/jobs',
      {
        schema: {
          summary: 'Submit a job',
          tags: ['jobs'],
          body: JobSubmission,
          response: {
            202: Type.Object({ job_id: Type.String(), created: Type.Boolean() }),
            422: Detail,
          },
        },
      },
      // A server span whose parent is the caller's traceparent: the job's run joins this trace.
      async (req, reply) =>
        reply.code(202).send(
          await traced(
            'POST /api/v1/jobs',
            {
              kind: SpanKind.SERVER,
              parent: extractContext((key) => {
                const v = req.headers[key];
                return Array.isArray(v) ? v[0] : v;
              }),
            },
            () => jobs.submit(req.body),
          ),
        ),
    );

    app.get(
      '/api/v1/jobs',
      {
        schema: {
          summary: 'List jobs, newest first',
          tags: ['jobs'],
          querystring: Type.Object({
            state: Type.Optional(Type.Union(JOB_STATES.map((s) => Type.Literal(s)))),
            queue: Type.Optional(Type.String()),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
            after: Type.Optional(
              Type.String({ description: 'the last job_id of the previous page' }),
            ),
          }),
          response: {
            200: Type.Object({
              jobs: Type.Array(View),
              next: Type.Union([Type.String(), Type.Null()]),
            }),
            422: Detail,
          },
        },
      },
      async (req) => {
        const q = req.query as Record<string, string | undefined>;
        const limit = q.limit === undefined ? 50 : Number(q.limit);
        const list = await jobs.list({
          ...(q.state ? { state: q.state as JobState } : {}),
          ...(q.queue ? { queue: q.queue } : {}),
          ...(q.after ? { after: q.after } : {}),
          limit,
        });
        return { jobs: list, next: list.length === limit ? list.at(-1)!.job_id : null };
      },
    );

    app.get(
      '/api/v1/jobs/:id',
      {
        schema: {
          summary: 'A job: state, attempts, times, result or error',
          tags: ['jobs'],
          params: JobId,
          response: { 200: View, 404: Detail },
        },
      },
      byId((id) => jobs.get(id)),
    );

    app.delete(
      '/api/v1/jobs/:id',
      {
        schema: {
          summary: 'Cancel a job (a running one sees its signal fire)',
          tags: ['jobs'],
          params: JobId,
          response: { 200: View, 404: Detail },
        },
      },
      byId((id) => jobs.cancel(id)),
    );

    app.get(
      '/api/v1/jobs/:id/events',
      {
        schema: {
          summary: "A job's state changes as Server-Sent Events (`event: state`), until it ends",
          tags: ['jobs'],
          params: JobId,
          produces: ['text/event-stream'],
          response: { 404: Detail },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        let job = await jobs.get(id);
        if (!job) return notFound(reply, id);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        let closed = false;
        // The response's 'close' is the client going (the request's fires once its body is read).
        res.on('close', () => {
          closed = true;
        });
        const send = (j: JobView) => res.write(`event: state\ndata: ${JSON.stringify(j)}\n\n`);
        send(job);
        let last = key(job);
        while (!closed && !TERMINAL_STATES.has(job.state)) {
          await new Promise((r) => setTimeout(r, pollMs));
          const now = await jobs.get(id).catch(() => undefined);
          if (!now) continue;
          job = now;
          if (key(job) !== last) {
            last = key(job);
            send(job);
          }
        }
        res.end();
      },
    );
  };
}

// What counts as a change: the state and the attempt.
const key = (j: JobView) => `${j.state}/${j.attempts}`;
