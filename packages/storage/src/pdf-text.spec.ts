import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTextPdfs, type TextPdfs } from '../test/support/text-pdfs.js';
import { docsFromAsset } from './docs-from-asset.js';
import { pdfTextLayer, type TextLayerPage } from './pdf-text.js';
import { searchablePdf } from './searchable-pdf.js';

// The text layer against poppler's `pdftotext -bbox` (Debian's poppler-utils, the peer), on pages
// made here with pdf-lib: every word found, each box within 2 px of poppler's at the render dpi.

const DPI = 150;
let dir: string;
let pdfs: TextPdfs;

interface PeerWord {
  text: string;
  box: [number, number, number, number];
}

/** `pdftotext -bbox` at `dpi`: per page, its words with boxes in the rendered page's pixels. */
function poppler(file: string, dpi = DPI): PeerWord[][] {
  const xml = execFileSync('pdftotext', ['-bbox', '-r', String(dpi), file, '-'], {
    encoding: 'utf8',
  });
  const entities = (s: string) =>
    s
      .replace(/&amp;/g, '&')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"');
  return xml
    .split('<page ')
    .slice(1)
    .map((page) =>
      [
        ...page.matchAll(
          /<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g,
        ),
      ].map((m) => {
        const [x0, y0, x1, y1] = m.slice(1, 5).map(Number) as [number, number, number, number];
        return { text: entities(m[5]!), box: [x0, y0, x1 - x0, y1 - y0] };
      }),
    );
}

/** Order-free word F1 and, for each word matched to the peer's (same text, nearest), the box error. */
function compare(ours: TextLayerPage, peer: PeerWord[]) {
  const left = [...peer];
  let matched = 0;
  let worst = 0;
  for (const w of ours.words) {
    let best = -1;
    let dist = Number.POSITIVE_INFINITY;
    left.forEach((p, i) => {
      if (p.text !== w.text) return;
      const d = Math.max(...p.box.map((v, k) => Math.abs(v - w.box[k]!)));
      if (d < dist) {
        dist = d;
        best = i;
      }
    });
    if (best < 0) continue;
    matched++;
    worst = Math.max(worst, dist);
    left.splice(best, 1);
  }
  const precision = matched / Math.max(ours.words.length, 1);
  const recall = matched / Math.max(peer.length, 1);
  return { f1: (2 * precision * recall) / Math.max(precision + recall, 1e-9), worst };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'marie-text-layer-'));
  pdfs = await makeTextPdfs(dir);
});

describe('pdfTextLayer', () => {
  it('born-digital pages (one and two columns, a table, rotated, a TrueType font): word F1 >= 0.99 against pdftotext -bbox, boxes within 2 px', async () => {
    const ours = (await pdfTextLayer(pdfs.digital, { dpi: DPI }))!;
    const peer = poppler(pdfs.digital);
    expect(ours).toHaveLength(5);
    expect(peer).toHaveLength(5);
    const scores = ours.map((p, i) => ({ page: i, ...compare(p, peer[i]!) }));
    for (const s of scores) {
      expect(s.f1, `page ${s.page}`).toBeGreaterThanOrEqual(0.99);
      expect(s.worst, `page ${s.page}`).toBeLessThanOrEqual(2);
    }
    // The rotated page reads a quarter turn clockwise; the others left to right.
    expect(new Set(ours[3]!.words.map((w) => w.dir))).toEqual(new Set([90]));
    expect(new Set(ours[0]!.words.map((w) => w.dir))).toEqual(new Set([0]));
    // The pixels are those of the page as docsFromAsset renders it (the rotated one landscape).
    const rendered = await docsFromAsset(pdfs.digital, { pages: [0, 3], dpi: DPI });
    expect(rendered.map((d) => [d.tensor!.shape[1], d.tensor!.shape[0]])).toEqual([
      [ours[0]!.width, ours[0]!.height],
      [ours[3]!.width, ours[3]!.height],
    ]);
    expect(ours[3]!.width).toBeGreaterThan(ours[3]!.height);
  });

  it('says where images are and how much they cover; glyphs drawn invisibly are counted', async () => {
    const [scan] = (await pdfTextLayer(pdfs.scan, { dpi: DPI }))!;
    expect(scan!.chars).toBe(0);
    expect(scan!.imageCoverage).toBeGreaterThan(0.99);
    const [mixed] = (await pdfTextLayer(pdfs.mixed, { dpi: DPI }))!;
    expect(mixed!.chars).toBeGreaterThan(100);
    expect(mixed!.images).toHaveLength(1);
    expect(mixed!.imageCoverage).toBeGreaterThan(0.05);
    expect(mixed!.imageCoverage).toBeLessThan(0.2);
    const [inv] = (await pdfTextLayer(pdfs.invisible, { dpi: DPI }))!;
    expect(inv!.invisibleChars).toBe(inv!.chars);
    expect(inv!.words.slice(0, 3).map((w) => w.text)).toEqual(['The', 'quarterly', 'statement']);
    expect(inv!.words.every((w) => w.invisible)).toBe(true);
    // Glyphs without a Unicode mapping are counted and read as U+FFFD.
    const [t3] = (await pdfTextLayer(pdfs.unmapped, { dpi: DPI }))!;
    expect(t3!.chars).toBe(55);
    expect(t3!.unmapped).toBe(55);
    expect(t3!.words[0]!.text).toBe('\ufffd'.repeat(11));
  });

  it('bad input: an image is no PDF (undefined), a page out of range and a broken file are errors naming the asset', async () => {
    const png = join(dir, 'x.png');
    writeFileSync(
      png,
      Buffer.from(
        '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
          '1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082',
        'hex',
      ),
    );
    expect(await pdfTextLayer(png)).toBeUndefined();
    await expect(pdfTextLayer(pdfs.mixed, { pages: [3] })).rejects.toThrow(
      `${pdfs.mixed}: page 3 is out of range (the asset has 1 page, 0-based)`,
    );
    const broken = join(dir, 'broken.pdf');
    writeFileSync(broken, '%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF');
    await expect(pdfTextLayer(broken)).rejects.toThrow(broken);
  });

  it('an encrypted PDF: without its password or with a wrong one, an error saying so; with it, read', async () => {
    const locked = join(dir, 'locked.pdf');
    // Debian's qpdf (.ci/run installs it) encrypts: AES-256, user password "user".
    execFileSync('qpdf', ['--encrypt', 'user', 'owner', '256', '--', pdfs.mixed, locked]);
    await expect(pdfTextLayer(locked)).rejects.toThrow(
      `${locked}: the PDF is encrypted: give its password (parameter password)`,
    );
    await expect(pdfTextLayer(locked, { password: 'guess' })).rejects.toThrow(
      `${locked}: the PDF's password is wrong`,
    );
    const [open] = (await pdfTextLayer(locked, { password: 'user', dpi: DPI }))!;
    const [plain] = (await pdfTextLayer(pdfs.mixed, { dpi: DPI }))!;
    expect(open!.words).toEqual(plain!.words);
    await expect(docsFromAsset(locked)).rejects.toThrow('the PDF is encrypted');
    expect(await docsFromAsset(locked, { password: 'user', dpi: 50 })).toHaveLength(1);
  });

  it('a broken cross-reference table is rebuilt (the same words); a PDF of no pages is an error', async () => {
    const bytes = readFileSync(pdfs.digital).toString('latin1');
    // Every offset of the table and the pointer to it wrong.
    const broken = bytes
      .replace(/(\d{10}) (\d{5}) n/g, (_m, _o, g) => `0000000001 ${g} n`)
      .replace(/startxref\s+\d+/, 'startxref\n12');
    const file = join(dir, 'broken-xref.pdf');
    writeFileSync(file, Buffer.from(broken, 'latin1'));
    const ours = (await pdfTextLayer(file, { dpi: DPI }))!;
    const intact = (await pdfTextLayer(pdfs.digital, { dpi: DPI }))!;
    expect(ours.map((p) => p.words.map((w) => w.text))).toEqual(
      intact.map((p) => p.words.map((w) => w.text)),
    );
    const empty = join(dir, 'empty.pdf');
    const doc = await PDFDocument.create();
    writeFileSync(empty, await doc.save({ addDefaultPage: false }));
    await expect(pdfTextLayer(empty)).rejects.toThrow(`${empty}: the PDF has no pages`);
    await expect(docsFromAsset(empty)).rejects.toThrow(`${empty}: the PDF has no pages`);
  });

  it('a page of 20,000 glyphs is read whole', async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Courier);
    const page = doc.addPage([612, 792]);
    const row = 'abcd efgh '.repeat(10);
    for (let i = 0; i < 200; i++) page.drawText(row, { x: 10, y: 780 - i * 3.9, size: 3, font });
    const file = join(dir, 'dense.pdf');
    writeFileSync(file, await doc.save());
    const [p] = (await pdfTextLayer(file, { dpi: 72 }))!;
    expect(p!.chars).toBe(200 * 80);
    expect(p!.words).toHaveLength(200 * 20);
    expect(p!.words[20]!.text).toBe('abcd');
  });
});

describe('searchablePdf', () => {
  it('writes words as an invisible layer where they are: pdfjs and pdftotext read them back', async () => {
    // The words of a born-digital page (exact boxes), written over the scan of a page.
    const [source] = (await pdfTextLayer(pdfs.digital, { pages: [0], dpi: DPI }))!;
    const words = source!.words.map((w) => ({ text: w.text, box: w.box }));
    const out = await searchablePdf(readFileSync(pdfs.scan), [{ page: 0, dpi: DPI, words }]);
    const file = join(dir, 'searchable.pdf');
    writeFileSync(file, out);
    const [back] = (await pdfTextLayer(file, { dpi: DPI }))!;
    expect(back!.words.map((w) => w.text)).toEqual(words.map((w) => w.text));
    expect(back!.words.every((w) => w.invisible)).toBe(true);
    // Placed on the boxes: within 2 px (the font's own ascent and descent set the height).
    const worst = Math.max(
      ...back!.words.flatMap((w, i) => w.box.map((v, k) => Math.abs(v - words[i]!.box[k]!))),
    );
    expect(worst).toBeLessThanOrEqual(2);
    // The picture is still there, under the text.
    expect(back!.imageCoverage).toBeGreaterThan(0.99);
    const peer = poppler(file)[0]!;
    expect(compare(back!, peer).f1).toBeGreaterThanOrEqual(0.99);
  });

  it('on a rotated page and on images (PNG, a page each), and refuses what it cannot read', async () => {
    const [turned] = (await pdfTextLayer(pdfs.digital, { pages: [3], dpi: DPI }))!;
    const out = await searchablePdf(readFileSync(pdfs.digital), [
      {
        page: 3,
        dpi: DPI,
        words: turned!.words.map((w) => ({ text: `${w.text}x`, box: w.box, dir: w.dir })),
      },
    ]);
    const file = join(dir, 'turned.pdf');
    writeFileSync(file, out);
    const [back] = (await pdfTextLayer(file, { pages: [3], dpi: DPI }))!;
    const added = back!.words.filter((w) => w.invisible);
    expect(added.map((w) => w.text)).toEqual(turned!.words.map((w) => `${w.text}x`));
    expect(new Set(added.map((w) => w.dir))).toEqual(new Set([90]));
    // An image: a page of its size at its dpi, the words on it.
    const png = await sharp({
      create: { width: 600, height: 300, channels: 3, background: '#ffffff' },
    })
      .png()
      .toBuffer();
    const fromImage = await searchablePdf(png, [
      { page: 0, dpi: 150, words: [{ text: 'Café', box: [100, 100, 120, 30] }] },
    ]);
    const imgFile = join(dir, 'image.pdf');
    writeFileSync(imgFile, fromImage);
    const [img] = (await pdfTextLayer(imgFile, { dpi: 150 }))!;
    expect([img!.width, img!.height]).toEqual([600, 300]);
    expect(img!.words.map((w) => w.text)).toEqual(['Café']);
    await expect(searchablePdf(Buffer.from('hello'), [], { name: 'x.txt' })).rejects.toThrow(
      'x.txt: not a PNG, JPEG, TIFF or PDF',
    );
  });
});
