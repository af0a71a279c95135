import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCode, MarieError } from '@marie/core';
import type { MarieDoc } from '@marie/docs';
import { docsFromAsset, sniffAssetType } from '@marie/storage';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import type { JobService } from './service.js';

const FILES: Record<string, string> = {
  '': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
};

/**
 * A file of this package's page (`ui/`): `api.js` is what other pages share with it (elements,
 * the API with its key, Server-Sent Events), served by @marie/pipelines under `/ui/dags`.
 */
export function readUiFile(name: 'api.js' | 'app.js' | 'app.css' | 'index.html'): Promise<Buffer> {
  return readFile(new URL(name, new URL('../ui/', import.meta.url)));
}
const EXT = { png: 'png', jpeg: 'jpg', tiff: 'tiff', pdf: 'pdf' } as const;

/**
 * `/ui`: a page (plain HTML, CSS and a JS module shipped in this package's `ui/` folder: nothing
 * to build) that uploads a document, follows its job over the job API's events, and draws each
 * page with its word boxes (hover: text and confidence) beside its text; recent jobs below.
 * `POST /ui/api/upload?name=` takes the file as the body (PNG, JPEG, TIFF or PDF by its bytes),
 * writes it under the service's uploads and submits it; `GET /ui/api/jobs/:id/pages/:n` is a
 * page of that job's document as PNG, rendered as the OCR saw it (PDF at 200 dpi).
 */
export function jobUi(service: JobService, options: { bodyLimit?: number } = {}) {
  const bodyLimit = options.bodyLimit ?? 50 * 1024 * 1024;
  return async (app: FastifyInstance): Promise<void> => {
    const folder = new URL('../ui/', import.meta.url);
    const files = new Map<string, Buffer>();
    for (const name of Object.keys(FILES))
      files.set(name, await readFile(new URL(name || 'index.html', folder)));

    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      if (err instanceof MarieError && err.code === ErrorCode.InvalidArgument)
        return reply.code(422).send({ detail: err.message });
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
      return reply.code(status).send({ detail: err.message });
    });
    for (const [name, type] of Object.entries(FILES)) {
      app.get(`/ui${name ? `/${name}` : ''}`, { schema: { hide: true } as object }, (_req, reply) =>
        reply.type(type).header('cache-control', 'no-cache').send(files.get(name)),
      );
    }
    app.get('/ui/', { schema: { hide: true } as object }, (_req, reply) => reply.redirect('/ui'));

    // The document is the body, whatever its content type says: its bytes tell what it is.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) =>
      done(null, body),
    );
    app.post(
      '/ui/api/upload',
      {
        bodyLimit,
        schema: {
          summary: 'Upload a document (the body: PNG, JPEG, TIFF or PDF) and submit its OCR job',
          tags: ['ui'],
          querystring: {
            type: 'object',
            properties: { name: { type: 'string' }, mode: { type: 'string' } },
          },
        },
      },
      async (req, reply) => {
        const body = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0)
          return reply.code(422).send({ detail: 'body: send the document as the request body' });
        const type = sniffAssetType(body);
        if (!type)
          return reply.code(422).send({
            detail: `body: not a PNG, JPEG, TIFF or PDF (first bytes ${body.subarray(0, 8).toString('hex')})`,
          });
        const q = req.query as { name?: string; mode?: string };
        const base = (q.name ?? 'document')
          .replace(/\.[A-Za-z0-9]{1,5}$/, '')
          .replace(/[^A-Za-z0-9_.-]+/g, '_')
          .slice(0, 80);
        const id = randomUUID();
        const key = service.uploadKey(id, `${base || 'document'}.${EXT[type]}`);
        await service.uploads.write(key, body);
        const { job_id } = await service.jobs.submit({
          endpoint: service.config.endpoint,
          asset_key: key,
          ref_id: base || id,
          ref_type: 'ui',
          parameters: { payload: { return_ocr: true, ...(q.mode ? { mode: q.mode } : {}) } },
          idempotency_key: `ui:${id}`,
        });
        return reply.code(202).send({ job_id, asset_key: key });
      },
    );

    app.get(
      '/ui/api/jobs/:id/pages/:page',
      {
        schema: {
          summary: "A page of a job's document as PNG (as its OCR saw it)",
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
        const job = await service.jobs.get(id);
        if (!job) return reply.code(404).send({ detail: `no job ${id}` });
        if (!job.asset_key || !service.uploads.canHandle(job.asset_key))
          return reply.code(404).send({ detail: `job ${id} has no uploaded document` });
        let docs: MarieDoc[];
        try {
          docs = [
            ...(await docsFromAsset(job.asset_key, { pages: [n], storage: service.uploads })),
          ];
        } catch (err) {
          return reply.code(404).send({ detail: (err as Error).message });
        }
        const t = docs[0]?.tensor;
        if (!t) return reply.code(404).send({ detail: `job ${id}: no page ${n}` });
        const [height, width, channels] = t.shape as [number, number, number];
        const png = await sharp(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), {
          raw: { width, height, channels: channels as 1 | 3 | 4 },
        })
          .png({ compressionLevel: 3 })
          .toBuffer();
        return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
      },
    );
  };
}
