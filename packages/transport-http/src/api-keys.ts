import { ApiKeys } from '@marie/core';
import type { FastifyInstance } from 'fastify';
import { closeAfter } from './connection-limits.js';

/**
 * Checks the key of every request as soon as its head arrives (fastify's onRequest runs before
 * the body is read): 401 with `WWW-Authenticate: Bearer` without one. Health and the API's
 * description stay open, so do /ui's static files (its calls carry the key).
 */
export function requireApiKeys(app: FastifyInstance, keys: ApiKeys): void {
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    const upgrade = req.headers.upgrade?.toLowerCase() === 'websocket';
    const open =
      req.method === 'GET' &&
      !upgrade &&
      (path === '/' ||
        path === '/openapi.json' ||
        path === '/docs' ||
        path.startsWith('/docs/') ||
        path === '/ui' ||
        path === '/ui/' ||
        /^\/ui\/app\.(js|css)$/.test(path));
    if (open || keys.accepts(ApiKeys.fromAuthorization(req.headers.authorization))) return;
    if (upgrade) closeAfter(reply);
    reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send({ detail: 'missing or unknown API key (send Authorization: Bearer <key>)' });
    return reply;
  });
}
