import { readFile } from 'node:fs/promises';
import { readUiFile } from '@marie/jobs';
import { docsFromAsset } from '@marie/storage';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import type { Dags } from './dags.js';

const FILES: Record<string, string> = {
  '': 'text/html; charset=utf-8',
  'dags.js': 'text/javascript; charset=utf-8',
  'dags.css': 'text/css; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
};

/**
 * `/ui/dags`: a page (plain HTML, CSS and a JS module shipped in this package's `ui/` folder) that
 * lists recent DAGs and draws one as a graph, each node coloured by its state with its time and
 * attempts, following its events while it runs; a node clicked shows its output or error, and an
 * OCR node its pages with their word boxes. `GET /ui/api/dags/:id/pages/:n` is a page of the
 * DAG's asset as PNG.
 */
export function dagUi(dags: Dags) {
  return async (app: FastifyInstance): Promise<void> => {
    const folder = new URL('../ui/', import.meta.url);
    const files = new Map<string, Buffer>();
    for (const name of Object.keys(FILES))
      files.set(
        name,
        // The helpers the jobs page has (the API with its key, SSE), served from @marie/jobs.
        name === 'api.js'
          ? await readUiFile('api.js')
          : await readFile(new URL(name || 'dags.html', folder)),
      );
    for (const [name, type] of Object.entries(FILES))
      app.get(
        `/ui/dags${name ? `/${name}` : ''}`,
        { schema: { hide: true } as object },
        (_req, reply) => reply.type(type).header('cache-control', 'no-cache').send(files.get(name)),
      );

    app.get(
      '/ui/api/dags/:id/pages/:page',
      {
        schema: {
          summary: "A page of a DAG's asset as PNG (the OCR nodes' word boxes sit on it)",
          tags: ['ui'],
          params: {
            type: 'object',
            properties: { id: { type: 'string' }, page: { type: 'string' } },
          },
        },
      },
      async (req, reply) => {
        const { id, page } = req.params as { id: string; page: string };
        const n = Number(page);
        if (!/^\d+$/.test(page) || n > 10_000)
          return reply.code(422).send({ detail: `page: "${page}" is not a page number (0-based)` });
        const dag = await dags.get(id, { outputs: false });
        if (!dag) return reply.code(404).send({ detail: `no DAG ${id}` });
        if (!dag.asset_key) return reply.code(404).send({ detail: `DAG ${id} has no asset` });
        let tensor: { shape: number[]; data: Uint8Array } | undefined;
        try {
          const docs = await docsFromAsset(dag.asset_key, {
            pages: [n],
            ...(dags.storage ? { storage: dags.storage } : {}),
          });
          tensor = docs[0]?.tensor as typeof tensor;
        } catch (err) {
          return reply.code(404).send({ detail: (err as Error).message });
        }
        if (!tensor) return reply.code(404).send({ detail: `DAG ${id}: no page ${n}` });
        const [height, width, channels] = tensor.shape as [number, number, number];
        const png = await sharp(
          Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
          { raw: { width, height, channels: channels as 1 | 3 | 4 } },
        )
          .png({ compressionLevel: 3 })
          .toBuffer();
        return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
      },
    );
  };
}
