import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataRequest, RequestHandler } from '@marie/core';
import { pdfTextLayer } from '@marie/storage';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../../packages/storage/test/support/postgres.js';
import {
  LEFT,
  makeTextPdfs,
  PROSE,
  RIGHT,
  TABLE,
  type TextPdfs,
} from '../../../packages/storage/test/support/text-pdfs.js';
import { TextExtractionExecutor } from './text-extraction.js';

const dir = mkdtempSync(join(tmpdir(), 'marie-te-'));
const page = join(dir, 'page.png');
let handler: RequestHandler;
let exec: TextExtractionExecutor;
let drop: () => Promise<void>;

beforeAll(async () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="300"><rect width="100%" height="100%" fill="white"/>
    <text x="60" y="90" font-family="DejaVu Sans" font-size="34">Invoice 7781 for Acme</text>
    <text x="60" y="200" font-family="DejaVu Sans" font-size="34">Total due 640 EUR</text></svg>`;
  await sharp(Buffer.from(svg)).png().toFile(page);
  const db = await testDatabase();
  drop = db.drop;
  exec = new TextExtractionExecutor({
    workers: 2,
    providers: ['cpu'],
    metas: { workspace: dir },
    storage: { psql: { ...db.psql, asset_tracking_enabled: true }, file: { roots: [dir] } },
  });
  handler = new RequestHandler(exec);
  await handler.open();
}, 60_000);
afterAll(async () => {
  await handler?.close();
  await drop?.();
  rmSync(dir, { recursive: true, force: true });
});

const extract = (parameters: Record<string, unknown>, docs: object[] = [{ asset_key: page }]) =>
  handler.handle(createDataRequest({ endpoint: '/document/extract', docs, parameters }));
const results = (res: { parameters: Record<string, unknown>; header: { status?: unknown } }) => {
  if (res.header.status) throw new Error(JSON.stringify(res.header.status));
  return (res.parameters.__results__ as Record<string, any>).TextExtractionExecutor;
};

describe('TextExtractionExecutor', () => {
  it("extracts a page in Marie's shapes, records the job, the rows and the ocr/* assets", async () => {
    const r = results(
      await extract({
        job_id: 'te-1',
        ref_id: 'inv-7781',
        ref_type: 'invoice',
        payload: { return_ocr: true },
      }),
    );
    expect(r.status).toBe('succeeded');
    expect(r.runtime_info).toMatchObject({ name: 'TextExtractionExecutor', use_cuda: false });
    expect(r.metadata).toMatchObject({
      ref_id: 'inv-7781',
      ref_type: 'invoice',
      job_id: 'te-1',
      pages: '1',
      format: 'xywh',
    });
    const [p0] = r.metadata.ocr;
    expect(p0.meta).toMatchObject({
      imageSize: { width: 1000, height: 300 },
      page: 0,
      lang: 'en',
      lines: 2,
    });
    expect(p0.lines.map((l: { text: string }) => l.text)).toEqual([
      'Invoice 7781 for Acme',
      'Total due 640 EUR',
    ]);
    expect(p0.words.map((w: { text: string }) => w.text)).toEqual([
      'Invoice',
      '7781',
      'for',
      'Acme',
      'Total',
      'due',
      '640',
      'EUR',
    ]);
    expect(p0.words[4]).toMatchObject({ line: 2, word_index: 0 });
    expect((await exec.storage.jobs.get('te-1'))!.status).toBe('SUCCEEDED');
    expect((await exec.storage.documents.byRef('inv-7781', 'invoice'))[0]!.content).toMatchObject({
      pages: 1,
    });
    const text = await exec.storage.assets.latest('ocr/text');
    expect(text).toMatchObject({ jobId: 'te-1', metadata: { page_count: 1, line_count: 2 } });
    const json = JSON.parse(readFileSync(r.metadata.assets[0].replace('file://', ''), 'utf8'));
    expect(json[0].lines).toHaveLength(2);
  }, 60_000);

  it('honours format xyxy and the word mode; ocr is left out unless return_ocr', async () => {
    const r = results(
      await extract({
        job_id: 'te-2',
        ref_id: 'inv',
        payload: { args: { format: 'xyxy', mode: 'word' }, return_ocr: true },
      }),
    );
    const w = r.metadata.ocr[0].words[0];
    expect(w.box[2]).toBeGreaterThan(w.box[0]);
    expect(w.box[2]).toBeGreaterThan(100); // x1, not a width
    expect(r.metadata.ocr[0].meta.format).toBe('xyxy');
    expect(r.metadata.ocr[0].text).toBe('Invoice 7781 for Acme Total due 640 EUR');
    const bare = results(await extract({ job_id: 'te-3', ref_id: 'inv', payload: {} }));
    expect(bare.metadata.ocr).toBeUndefined();
    expect(bare.metadata.ref_type).toBe('not_defined');
  }, 60_000);

  it('reads regions (Marie crashes on them)', async () => {
    const r = results(
      await extract({
        job_id: 'te-4',
        ref_id: 'inv',
        payload: { regions: [{ id: 'total', pageIndex: 0, x: 40, y: 150, w: 500, h: 70 }] },
      }),
    );
    expect(r.metadata.regions).toEqual([
      { id: 'total', text: 'Total due 640 EUR', confidence: expect.any(Number) },
    ]);
  }, 60_000);

  it("reads a region by Marie's mode: word, line and raw_line recognise one line, sparse and multiline detect", async () => {
    // Both lines of the page, and the total's line alone, in every mode.
    const both = { pageIndex: 0, x: 40, y: 40, w: 700, h: 190 };
    const total = { pageIndex: 0, x: 40, y: 150, w: 500, h: 70 };
    const modes = ['word', 'line', 'raw_line', 'sparse', 'multiline'] as const;
    const r = results(
      await extract({
        job_id: 'te-modes',
        ref_id: 'inv',
        payload: {
          regions: modes.flatMap((mode) => [
            { id: `both-${mode}`, ...both, mode },
            { id: `total-${mode}`, ...total, mode },
          ]),
        },
      }),
    );
    const text = Object.fromEntries(
      r.metadata.regions.map((x: { id: string; text: string }) => [x.id, x.text]),
    );
    // Detection finds both lines: one per line (sparse), one paragraph (multiline).
    expect(text['both-sparse']).toBe('Invoice 7781 for Acme\nTotal due 640 EUR');
    expect(text['both-multiline']).toBe('Invoice 7781 for Acme Total due 640 EUR');
    // Recognition alone reads a region as one line: right for one field, not for two lines.
    for (const mode of ['word', 'line', 'raw_line'])
      expect(text[`both-${mode}`], mode).not.toContain('\n');
    expect(text['both-line']).not.toBe('Invoice 7781 for Acme Total due 640 EUR');
    expect(text['total-line']).toBe('Total due 640 EUR');
    expect(text['total-word']).toBe('Totaldue640EUR');
    // raw_line: the model's own text; line: its words with single spaces.
    expect(text['total-raw_line'].replace(/\s+/g, ' ').trim()).toBe(text['total-line']);
    expect(text['total-sparse']).toBe('Total due 640 EUR');
  }, 60_000);

  it('names a missing parameter and a bad format; the job is FAILED', async () => {
    const res = await extract({ job_id: 'te-5', ref_id: 'inv' });
    expect(res.header.status?.description).toContain(
      'parameters.payload: required field is missing',
    );
    const bad = await extract({ job_id: 'te-6', ref_id: 'inv', payload: { format: 'polygon' } });
    expect(bad.header.status?.description).toContain(
      'parameters.payload.format: expected one of "xywh", "xyxy", got string "polygon"',
    );
    expect((await exec.storage.jobs.get('te-6'))!.status).toBe('FAILED');
    const region = await extract({
      job_id: 'te-7',
      ref_id: 'inv',
      payload: { args: { regions: [{ pageIndex: 0, x: 0, y: 0, w: 0, h: 10 }] } },
    });
    expect(region.header.status?.description).toContain('parameters.payload.args.regions[0].w');
  });

  it('declares its parameters: endpoint_discovery and OpenAPI get their JSON Schema', () => {
    const listed = handler.endpoints().schemas['/document/extract']!;
    expect(listed.parameters?.name).toBe('ExtractParameters');
    expect(listed.parameters?.model).toMatchObject({
      required: expect.arrayContaining(['job_id', 'ref_id', 'payload']),
    });
  });

  it('runs concurrent requests together, each job on its own record', async () => {
    const jobs = ['te-c1', 'te-c2', 'te-c3'];
    const answers = await Promise.all(
      jobs.map((job_id) =>
        extract({ job_id, ref_id: 'inv-c', payload: { return_ocr: true, mode: 'line' } }),
      ),
    );
    for (const [i, a] of answers.entries()) {
      const r = results(a);
      expect(r.metadata.job_id).toBe(jobs[i]);
      expect(r.metadata.ocr[0].text).toBe('Invoice 7781 for Acme\nTotal due 640 EUR');
      expect((await exec.storage.jobs.get(jobs[i]!))!.status).toBe('SUCCEEDED');
    }
  }, 60_000);

  it('names a bad batch_size, workers or threads', () => {
    expect(() => new TextExtractionExecutor({ workers: -1 })).toThrow(
      'with.workers: -1 is not a whole number >= 0',
    );
    expect(() => new TextExtractionExecutor({ threads: 0.5 })).toThrow(
      'with.threads: 0.5 is not a whole number >= 1',
    );
    expect(() => new TextExtractionExecutor({ batch_size: 0 })).toThrow(
      'with.batch_size: 0 is not a whole number >= 1',
    );
  });

  it('answers /document/extract/status', async () => {
    const res = await handler.handle(createDataRequest({ endpoint: '/document/extract/status' }));
    expect((res.parameters.__results__ as Record<string, unknown>).TextExtractionExecutor).toEqual({
      index: 'complete',
      use_cuda: false,
    });
  });
});

describe('text from where it is (source: auto | text | ocr)', () => {
  let pdfs: TextPdfs;
  beforeAll(async () => {
    pdfs = await makeTextPdfs(dir);
  }, 60_000);
  let n = 0;
  const ocrOf = async (asset: string, payload: Record<string, unknown> = {}) =>
    results(
      await extract(
        { job_id: `te-src-${n++}`, ref_id: 'src', payload: { return_ocr: true, ...payload } },
        [{ asset_key: asset }],
      ),
    ).metadata;
  const words = (p: { words: { text: string }[] }) => p.words.map((w) => w.text);

  it('born-digital pages come from their text layer, in reading order: columns apart, the table by rows', async () => {
    const m = await ocrOf(pdfs.digital);
    expect(m.sources).toEqual({ text: 5, ocr: 0, mixed: 0 });
    expect(m.ocr.map((p: { meta: { source: string } }) => p.meta.source)).toEqual(
      Array(5).fill('text'),
    );
    const [one, two, table, rotated, ttf] = m.ocr;
    expect(one.lines.map((l: { text: string }) => l.text)).toEqual([
      'Statement of Account',
      ...PROSE,
    ]);
    expect(two.lines.map((l: { text: string }) => l.text)).toEqual([
      'Shipment Report',
      ...LEFT,
      ...RIGHT,
    ]);
    // A table's cells are lines of their own (as OCR finds them), read row by row.
    expect(words(table)).toEqual(TABLE.flat());
    expect(rotated.lines.map((l: { text: string }) => l.text)).toEqual(PROSE.slice(0, 3));
    expect(ttf.lines.map((l: { text: string }) => l.text)).toEqual(PROSE.slice(2, 6));
    // Words with confidence 1 and boxes in the page's pixels (200 dpi: 612 pt is 1700 px).
    expect(one.meta.imageSize.width).toBe(1700);
    expect(one.words[0]).toMatchObject({ text: 'Statement', confidence: 1 });
    expect(one.words[0].box[0]).toBeCloseTo(200, 0);
  });

  it("a scan is OCR'd; a mixed page takes its text layer and OCRs the pasted paragraph; an invisible layer is trusted", async () => {
    const scan = await ocrOf(pdfs.scan);
    expect(scan.sources).toEqual({ text: 0, ocr: 1, mixed: 0 });
    expect(words(scan.ocr[0]).join(' ')).toContain('quarterly statement');
    const mixed = await ocrOf(pdfs.mixed);
    expect(mixed.sources).toEqual({ text: 0, ocr: 0, mixed: 1 });
    const text = mixed.ocr[0].lines.map((l: { text: string }) => l.text);
    expect(text.slice(0, 3)).toEqual(PROSE.slice(0, 3));
    expect(text.slice(3).join(' ')).toMatch(/scanned.*paper letter.*pasted/);
    // A font without a Unicode mapping: OCR'd, and the page says so.
    const t3 = await ocrOf(pdfs.unmapped);
    expect(t3.sources).toEqual({ text: 0, ocr: 1, mixed: 0 });
    expect(t3.ocr[0].meta.source).toBe('ocr');
    const inv = await ocrOf(pdfs.invisible);
    expect(inv.sources).toEqual({ text: 1, ocr: 0, mixed: 0 });
    expect(inv.ocr[0].lines.map((l: { text: string }) => l.text)).toEqual(PROSE.slice(0, 4));
  });

  it('searchable: stores the scan with its OCR as an invisible layer beside the OCR JSON', async () => {
    const m = await ocrOf(pdfs.scan, { searchable: true });
    expect(m.searchable).toMatch(/^file:\/\/.*\/src\/te-src-\d+\.pdf$/);
    const file = m.searchable.replace(/^file:\/\//, '');
    const [back] = (await pdfTextLayer(file, { dpi: 200 }))!;
    expect(back!.words.every((w) => w.invisible)).toBe(true);
    expect(back!.words.map((w) => w.text)).toEqual(words(m.ocr[0]));
    const many = await extract({ job_id: 'te-s2', ref_id: 'x', payload: { searchable: true } }, [
      { asset_key: pdfs.scan },
      { asset_key: pdfs.mixed },
    ]);
    expect(many.header.status?.description).toContain('parameters.payload.searchable');
  });

  it('an encrypted PDF: an error naming the file and the password, and nothing stored; with its password, read', async () => {
    const locked = join(dir, 'locked.pdf');
    execFileSync('qpdf', ['--encrypt', 'user', 'owner', '256', '--', pdfs.digital, locked]);
    const res = await extract({ job_id: 'te-locked', ref_id: 'locked', payload: {} }, [
      { asset_key: locked },
    ]);
    expect(res.header.status?.description).toContain(
      `${locked}: the PDF is encrypted: give its password (parameter password)`,
    );
    expect(existsSync(join(dir, 'results', 'locked'))).toBe(false);
    const open = await ocrOf(locked, { password: 'user' });
    expect(open.sources).toEqual({ text: 5, ocr: 0, mixed: 0 });
  });

  it('source: ocr redoes every page (the invisible layer too); source: text takes the layer as it is', async () => {
    const inv = await ocrOf(pdfs.invisible, { source: 'ocr' });
    expect(inv.sources).toEqual({ text: 0, ocr: 1, mixed: 0 });
    expect(inv.ocr[0].meta.source).toBe('ocr');
    expect(words(inv.ocr[0]).join(' ')).toContain('quarterly statement');
    const scan = await ocrOf(pdfs.scan, { source: 'text' });
    expect(scan.sources).toEqual({ text: 1, ocr: 0, mixed: 0 });
    expect(scan.ocr[0].words).toEqual([]);
    const bad = await extract({ job_id: 'x', ref_id: 'x', payload: { source: 'best' } }, [
      { asset_key: pdfs.scan },
    ]);
    expect(JSON.stringify(bad.header.status)).toContain('source');
  });
});
