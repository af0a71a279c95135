// `marie ocr` as a user runs it: a PDF and a 2-page TIFF made here, text on stdout in reading
// order, Marie's JSON with --format json, --pages, and usage errors with exit code 2.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MARIE_BIN } from '../support/marie-process.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'marie-ocr-cli-'));
const pdf = join(dir, 'letter.pdf');
const tiff = join(dir, 'scan.tiff');
const marie = (args: string[], cwd?: string) =>
  run(process.execPath, [MARIE_BIN, 'ocr', ...args], {
    env: { ...process.env, MARIE_LOG_LEVEL: 'silent' },
    ...(cwd ? { cwd } : {}),
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

beforeAll(async () => {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const t of ['Dear customer, thank you', 'Your order ships today']) {
    const page = doc.addPage([612, 300]);
    page.drawText(t, { x: 60, y: 200, size: 24, font });
  }
  writeFileSync(pdf, await doc.save());
  const pages = await Promise.all(
    ['First scanned page', 'Second scanned page'].map((t) =>
      sharp(
        Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="200"><rect width="100%" height="100%" fill="white"/><text x="40" y="110" font-family="DejaVu Sans" font-size="40">${t}</text></svg>`,
        ),
      )
        .png()
        .toBuffer(),
    ),
  );
  await sharp(pages, { join: { animated: true } })
    .tiff()
    .toFile(tiff);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('marie ocr', () => {
  it('prints the text of every page of a PDF and a TIFF, named as the user named them', async () => {
    // Relative paths are the user's, from where they run the command.
    const r = await marie(['letter.pdf', tiff], dir);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      '--- letter.pdf page 0 (text) ---',
      'Dear customer, thank you',
      '--- letter.pdf page 1 (text) ---',
      'Your order ships today',
      `--- ${tiff} page 0 (ocr) ---`,
      'First scanned page',
      `--- ${tiff} page 1 (ocr) ---`,
      'Second scanned page',
    ]);
  }, 60_000);

  it('--source ocr reads a PDF with OCR even where it has a text layer; --source is checked', async () => {
    const r = await marie([pdf, '--source', 'ocr', '--format', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.sources).toEqual({ text: 0, ocr: 2, mixed: 0 });
    expect(out.pages.map((p: { meta: { source: string } }) => p.meta.source)).toEqual([
      'ocr',
      'ocr',
    ]);
    expect(out.pages[1].lines[0].text).toBe('Your order ships today');
    const auto = JSON.parse((await marie([pdf, '--format', 'json'])).stdout);
    expect(auto.sources).toEqual({ text: 2, ocr: 0, mixed: 0 });
    expect(auto.pages[0].words[0]).toMatchObject({ text: 'Dear', confidence: 1 });
    const bad = await marie([pdf, '--source', 'best']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--source: "best" is not auto, text or ocr');
  }, 60_000);

  it("answers Marie's per-page JSON, for the pages asked for", async () => {
    const r = await marie([tiff, '--pages', '1', '--format', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.file).toBe(tiff);
    expect(out.pages).toHaveLength(1);
    const page = out.pages[0];
    expect(page.meta).toMatchObject({
      imageSize: { width: 900, height: 200 },
      page: 1,
      lang: 'en',
      lines: 1,
      format: 'xywh',
    });
    expect(page.words.map((w: { text: string }) => w.text)).toEqual(['Second', 'scanned', 'page']);
    expect(page.words[0]).toMatchObject({ id: 0, line: 1, word_index: 0 });
    expect(page.words[0].box).toHaveLength(4);
    expect(page.lines[0]).toMatchObject({
      line: 1,
      wordids: [0, 1, 2],
      text: 'Second scanned page',
    });
  }, 60_000);

  it('--output writes a searchable PDF: the scan with its OCR as an invisible layer, read back by pdfjs and pdftotext', async () => {
    const out = join(dir, 'searchable.pdf');
    const r = await marie([tiff, '--pages', '0', '--output', out, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const ocr = JSON.parse(r.stdout).pages[0].words.map((w: { text: string }) => w.text);
    expect(ocr).toEqual(['First', 'scanned', 'page']);
    // pdfjs (our text layer) and poppler read the same words back, drawn invisibly.
    const back = JSON.parse((await marie([out, '--format', 'json', '--source', 'text'])).stdout);
    expect(back.pages[0].words.map((w: { text: string }) => w.text)).toEqual(ocr);
    const { stdout } = await run('pdftotext', ['-f', '1', '-l', '1', out, '-']);
    expect(stdout.trim()).toBe('First scanned page');
    const two = await marie([tiff, pdf, '--output', out]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('--output: one input file, not 2');
  }, 60_000);

  it('names what is wrong, exit 2 for usage', async () => {
    const bad = await marie([tiff, '--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format: "xml" is not text or json');
    const range = await marie([tiff, '--pages', '5']);
    expect(range.code).not.toBe(0);
    expect(range.stderr).toContain('page 5 is out of range (the asset has 2 pages, 0-based)');
  }, 60_000);
});
