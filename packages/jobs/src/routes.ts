import { extractContext, MarieError, SpanKind, traced } from '@marie/core';
import {
  JobApiError,
  JobCreated,
  JobListQuery,
  JobPage,
  JobSubmission,
  JobView,
  TERMINAL_STATES,
} from '@marie/jobs-contract';
import { toHttpStatus } from '@marie/transport-http';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Jobs } from './jobs.js';

const JobId = Type.Object({ id: Type.String({ description: 'a job id (uuid)' }) });

export interface JobRoutesOptions {
  /** How often an events stream looks at its job (ms, 250). */
  pollMs?: number;
}

/**
 * How the job and DAG APIs answer errors (in the plugin's scope): the route schemas document the
 * API and the services check input themselves, so a MarieError answers by its code (transport-
 * http's table: 422 naming the field for bad input, 404, 409, 503 with the database gone),
 * fastify's own errors by their status, the rest 500.
 */
export function apiErrors(app: FastifyInstance): void {
  app.setValidatorCompiler(() => () => true);
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const marie = err instanceof MarieError ? err : undefined;
    const status = marie
      ? toHttpStatus(marie.code)
      : err.statusCode && err.statusCode < 500
        ? err.statusCode
        : 500;
    return reply.code(status).send({
      detail: status === 500 ? `internal error: ${err.message}` : err.message,
      ...(marie?.field ? { field: marie.field } : {}),
    });
  });
}

/**
 * The job API under `/api/v1/jobs` as a fastify plugin: submit (202), get, list, cancel, and a
 * job's state changes as Server-Sent Events. Route schemas describe it for OpenAPI; bodies are
 * checked by `Jobs.submit`, whose errors answer 422 naming the field.
 */
export function jobRoutes(jobs: Jobs, options: JobRoutesOptions = {}) {
  const pollMs = options.pollMs ?? 250;
  return async (app: FastifyInstance): Promise<void> => {
    apiErrors(app);
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
          response: { 202: JobCreated, 422: JobApiError },
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
          querystring: JobListQuery,
          response: { 200: JobPage, 422: JobApiError },
        },
      },
      async (req) => {
        const q = req.query as Record<string, string | undefined>;
        const limit = q.limit === undefined ? 50 : Number(q.limit);
        const list = await jobs.list({
          ...(q.state ? { state: q.state as JobListQuery['state'] } : {}),
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
          response: { 200: JobView, 404: JobApiError },
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
          response: { 200: JobView, 404: JobApiError },
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
          response: { 404: JobApiError },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        const job = await jobs.get(id);
        if (!job) return notFound(reply, id);
        await followEvents(reply, {
          first: job,
          load: () => jobs.get(id),
          send: (j, write) => write('state', j),
          key,
          ended: (j) => TERMINAL_STATES.has(j.state),
          pollMs,
        });
      },
    );
  };
}

// What counts as a change: the state and the attempt.
const key = (j: JobView) => `${j.state}/${j.attempts}`;

/**
 * Server-Sent Events that follow a thing (a job, a DAG) by polling it: `send` writes what changed
 * (`key` tells a change) until it `ended` or the client goes. The reply is hijacked.
 */
export async function followEvents<T>(
  reply: FastifyReply,
  o: {
    first: T;
    load: () => Promise<T | undefined>;
    send: (now: T, write: (event: string, data: unknown) => void, before: T | undefined) => void;
    key: (t: T) => string;
    ended: (t: T) => boolean;
    pollMs: number;
  },
): Promise<void> {
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
  const write = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  let cur = o.first;
  o.send(cur, write, undefined);
  let last = o.key(cur);
  while (!closed && !o.ended(cur)) {
    await new Promise((r) => setTimeout(r, o.pollMs));
    const now = await o.load().catch(() => undefined);
    if (!now) continue;
    const before = cur;
    cur = now;
    if (o.key(cur) !== last) {
      last = o.key(cur);
      o.send(cur, write, before);
    }
  }
  res.end();
}
