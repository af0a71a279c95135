import { extractContext, SpanKind, traced } from '@marie/core';
import { apiErrors, followEvents } from '@marie/jobs';
import {
  DAG_ENDED,
  DagCreated,
  DagListQuery,
  DagPage,
  DagSubmission,
  DagView,
  JobApiError,
} from '@marie/jobs-contract';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dags } from './dags.js';

const DagId = Type.Object({ id: Type.String({ description: 'a DAG id (uuid)' }) });

export interface DagRoutesOptions {
  /** How often an events stream looks at its DAG (ms, 250). */
  pollMs?: number;
}

/**
 * The DAG API under `/api/v1/dags` as a fastify plugin: submit (202, pre-flight 422), get (every
 * node), list, cancel, retry from the failure, and the DAG's changes as Server-Sent Events
 * (`event: node` per node that changed, `event: state` for the DAG). In the OpenAPI document.
 */
export function dagRoutes(dags: Dags, options: DagRoutesOptions = {}) {
  const pollMs = options.pollMs ?? 250;
  return async (app: FastifyInstance): Promise<void> => {
    apiErrors(app);
    const notFound = (reply: FastifyReply, id: string) =>
      reply.code(404).send({ detail: `no DAG ${id}` });
    const byId =
      (find: (id: string) => Promise<DagView | undefined>) =>
      async (req: FastifyRequest, reply: FastifyReply) => {
        const { id } = req.params as { id: string };
        return (await find(id)) ?? notFound(reply, id);
      };

    app.post(
      '/api/v1/dags',
      {
        schema: {
          summary: 'Run a plan over an asset as a DAG (checked before anything is queued)',
          tags: ['dags'],
          body: DagSubmission,
          response: { 202: DagCreated, 422: JobApiError },
        },
      },
      async (req, reply) =>
        reply.code(202).send(
          await traced(
            'POST /api/v1/dags',
            {
              kind: SpanKind.SERVER,
              parent: extractContext((key) => {
                const v = req.headers[key];
                return Array.isArray(v) ? v[0] : v;
              }),
            },
            () => dags.submit(req.body),
          ),
        ),
    );

    app.get(
      '/api/v1/dags',
      {
        schema: {
          summary: 'List DAGs, newest first (without their nodes)',
          tags: ['dags'],
          querystring: DagListQuery,
          response: { 200: DagPage, 422: JobApiError },
        },
      },
      async (req) => {
        const q = req.query as Record<string, string | undefined>;
        const limit = q.limit === undefined ? 50 : Number(q.limit);
        const list = await dags.list({
          ...(q.state ? { state: q.state as DagView['state'] } : {}),
          ...(q.plan ? { plan: q.plan } : {}),
          ...(q.ref_id ? { ref_id: q.ref_id } : {}),
          ...(q.after ? { after: q.after } : {}),
          limit,
        });
        return { dags: list, next: list.length === limit ? list.at(-1)!.dag_id : null };
      },
    );

    app.get(
      '/api/v1/dags/:id',
      {
        schema: {
          summary: "A DAG: every node's state, attempts, timings, output or error",
          tags: ['dags'],
          params: DagId,
          response: { 200: DagView, 404: JobApiError },
        },
      },
      byId((id) => dags.get(id)),
    );

    app.delete(
      '/api/v1/dags/:id',
      {
        schema: {
          summary: 'Cancel a DAG: pending nodes cancelled, running ones aborted',
          tags: ['dags'],
          params: DagId,
          response: { 200: DagView, 404: JobApiError },
        },
      },
      byId((id) => dags.cancel(id)),
    );

    app.post(
      '/api/v1/dags/:id/retry',
      {
        schema: {
          summary:
            'Run again the failed and cancelled nodes and what depends on them (completed nodes keep their outputs)',
          tags: ['dags'],
          params: DagId,
          response: { 200: DagView, 404: JobApiError, 409: JobApiError },
        },
      },
      byId((id) => dags.retry(id)),
    );

    app.get(
      '/api/v1/dags/:id/events',
      {
        schema: {
          summary: "A DAG's changes as Server-Sent Events (`node`, then `state`), until it ends",
          tags: ['dags'],
          params: DagId,
          produces: ['text/event-stream'],
          response: { 404: JobApiError },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string };
        const dag = await dags.get(id, { outputs: false });
        if (!dag) return notFound(reply, id);
        const nodeKey = (n: NonNullable<DagView['nodes']>[number]) => `${n.state}/${n.attempts}`;
        await followEvents(reply, {
          first: dag,
          load: () => dags.get(id, { outputs: false }),
          send: (now, write, before) => {
            const was = new Map(before?.nodes?.map((n) => [n.node_id, nodeKey(n)]));
            for (const n of now.nodes ?? [])
              if (was.get(n.node_id) !== nodeKey(n)) write('node', n);
            const { nodes: _, ...state } = now;
            write('state', state);
          },
          key: (d) => `${d.state}/${d.nodes?.map(nodeKey).join(',')}`,
          ended: (d) => DAG_ENDED.has(d.state),
          pollMs,
        });
      },
    );
  };
}
