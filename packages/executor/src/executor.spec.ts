import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataRequest, type RequestContext, RequestHandler, requests } from '@marie/core';
import { AssetKeyDoc, type DocList } from '@marie/docs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../storage/test/support/postgres.js';
import { type AnnotateInput, DocumentAnnotatorExecutor } from './document-annotator.js';
import { MarieExecutor } from './marie-executor.js';

class Totals extends DocumentAnnotatorExecutor {
  seen: AnnotateInput[] = [];
  @requests({ on: '/annotator/totals', requestSchema: AssetKeyDoc })
  run(docs: DocList<AssetKeyDoc>, ctx: RequestContext) {
    return this.annotateRequest(docs, ctx);
  }
  async annotate(input: AnnotateInput) {
    this.seen.push(input);
    if (input.layout === 'broken') throw new RangeError('no total on this layout');
    if (input.layout === 'slow')
      await new Promise((_r, reject) =>
        input.signal.addEventListener('abort', () => reject(input.signal.reason)),
      );
    return { total: 42, pages: input.pages.length };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'marie-annot-'));
const png = join(dir, 'page.png');
let drop: () => Promise<void>;
let handler: RequestHandler;
let exec: Totals;

beforeAll(async () => {
  await sharp({ create: { width: 20, height: 10, channels: 3, background: '#fff' } })
    .png()
    .toFile(png);
  const db = await testDatabase();
  drop = db.drop;
  exec = new Totals({ storage: { psql: db.psql, file: { roots: [dir] } } });
  handler = new RequestHandler(exec);
  await handler.open();
});
afterAll(async () => {
  await handler?.close();
  await drop?.();
  rmSync(dir, { recursive: true, force: true });
});

const call = (docs: object[], parameters: Record<string, unknown>, signal?: AbortSignal) =>
  handler.handle(
    createDataRequest({ endpoint: '/annotator/totals', docs, parameters }),
    signal ? { signal } : {},
  );
const results = (res: { parameters: Record<string, unknown> }) =>
  (res.parameters.__results__ as Record<string, any>).Totals;

describe('DocumentAnnotatorExecutor', () => {
  const params = {
    job_id: 'j-ok',
    ref_id: 'doc-7',
    ref_type: 'invoice',
    payload: { op_params: { key: 'totals', layout: '101' } },
  };

  it('annotates the pages of the one asset, records annotation/<key>, answers success', async () => {
    const res = await call([{ asset_key: png }], params);
    const r = results(res);
    expect(r).toMatchObject({
      status: 'success',
      error: null,
      annotation: { total: 42, pages: 1 },
    });
    expect(r.runtime_info).toMatchObject({ name: 'Totals', instance_name: 'Totals', model: null });
    expect(r.asset.key).toBe('annotation/totals');
    expect(exec.seen.at(-1)).toMatchObject({
      key: 'totals',
      layout: '101',
      jobId: 'j-ok',
      refId: 'doc-7',
      refType: 'invoice',
    });
    expect(exec.seen.at(-1)!.pages[0]!.tensor!.shape).toEqual([10, 20, 3]);
    const latest = await exec.storage.assets.latest('annotation/totals');
    expect(latest).toMatchObject({ version: r.asset.version, jobId: 'j-ok' });
    expect((await exec.storage.jobs.get('j-ok'))!.status).toBe('SUCCEEDED');
  });

  it.each([
    ['no document', [], { ...params, job_id: 'j1' }, 'expected exactly one AssetKeyDoc, got 0'],
    [
      'two documents',
      [{ asset_key: png }, { asset_key: png }],
      { ...params, job_id: 'j2' },
      'expected exactly one AssetKeyDoc, got 2',
    ],
    [
      'no job_id',
      [{ asset_key: png }],
      { ...params, job_id: undefined },
      'parameters.job_id is required',
    ],
    [
      'no key',
      [{ asset_key: png }],
      { ...params, job_id: 'j4', payload: {} },
      'parameters.payload.op_params.key is required',
    ],
    [
      'a missing asset',
      [{ asset_key: join(dir, 'none.png') }],
      { ...params, job_id: 'j5' },
      'none.png: read failed',
    ],
    [
      'a failing annotator',
      [{ asset_key: png }],
      { ...params, job_id: 'j6', payload: { op_params: { key: 'totals', layout: 'broken' } } },
      'no total on this layout',
    ],
  ])('%s answers status "error" (and the job is FAILED)', async (_what, docs, p, message) => {
    const res = await call(docs, p);
    expect(res.header.status).toBeUndefined();
    const r = results(res);
    expect(r.status).toBe('error');
    expect(r.error.message).toContain(message);
    if (typeof p.job_id === 'string')
      expect((await exec.storage.jobs.get(p.job_id))!.status).toBe('FAILED');
  });

  it('cancellation is never swallowed', async () => {
    const ac = new AbortController();
    const pending = call(
      [{ asset_key: png }],
      { ...params, job_id: 'j-cancel', payload: { op_params: { key: 'totals', layout: 'slow' } } },
      ac.signal,
    );
    setTimeout(() => ac.abort(new DOMException('client gone', 'AbortError')), 200);
    const res = await pending;
    expect(res.header.status?.exception?.name).toBe('AbortError');
    expect((await exec.storage.jobs.get('j-cancel'))!.status).toBe('FAILED');
  });
});

describe('MarieExecutor', () => {
  it('answers /status with the health record (monitor off: healthy, "not probed yet")', async () => {
    const m = new MarieExecutor();
    const h = new RequestHandler(m);
    const [doc] = await h.post<{ text: string }>('/status');
    expect(JSON.parse(doc!.text)).toMatchObject({
      healthy: true,
      reason: 'not probed yet',
      monitor_enabled: false,
      pid: process.pid,
      name: 'MarieExecutor',
    });
    await h.close();
  });
  it('names a bad with.health key', () => {
    expect(() => new MarieExecutor({ health: { gpu_monitor: true } })).toThrow(
      'with.health.gpu_monitor: unknown key',
    );
  });
});

describe('job events', () => {
  class Steps extends MarieExecutor {
    @requests({ on: '/ok' })
    ok() {
      return { done: true };
    }
    @requests({ on: '/boom' })
    boom() {
      throw new TypeError('bad page');
    }
  }

  it('sends <name>.started, then .completed or .failed (not completed with FAILED), through the toast handlers', async () => {
    const db = await testDatabase();
    const out = join(dir, 'events.jsonl');
    const e = new Steps({
      metas: { name: 'steps' },
      storage: { psql: db.psql },
      toast: { native: { path: out }, spool_dir: join(dir, 'spool') },
    });
    const h = new RequestHandler(e);
    await h.open();
    try {
      await h.handle(
        createDataRequest({
          endpoint: '/ok',
          parameters: { job_id: 'e1', ref_type: 'invoice', ref_id: 'r1' },
        }),
      );
      await h.handle(createDataRequest({ endpoint: '/boom', parameters: { job_id: 'e2' } }));
      await h.handle(createDataRequest({ endpoint: '/ok' })); // not job-tracked: no events
      expect(await e.toast!.drain(5000)).toBe(true);
      const lines = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).event);
      expect(lines.map((x) => [x.event, x.jobid, x.status])).toEqual([
        ['steps.started', 'e1', 'INFO'],
        ['steps.completed', 'e1', 'OK'],
        ['steps.started', 'e2', 'INFO'],
        ['steps.failed', 'e2', 'FAILED'],
      ]);
      expect(lines[1]).toMatchObject({
        jobtag: 'invoice',
        source: 'job://completed/e1',
        payload: { endpoint: '/ok', docs: 0, ref_id: 'r1' },
      });
      expect(lines[3].payload.error).toEqual({ name: 'TypeError', message: 'bad page' });
      expect((await e.storage.jobs.get('e1'))!.status).toBe('SUCCEEDED');
    } finally {
      await h.close();
      await db.drop();
    }
  });
});
