// bench/ocr's text-layer rows: a born-digital PDF of 36 pages made here with pdf-lib (prose in one
// and two columns, a table every sixth page), read
//   - from its text layer: pdfTextLayer and textLayerPage (words, boxes, lines, reading order);
//   - by pdfjs-dist's bare getTextContent (no words, no boxes per word, no order): the floor;
//   - by poppler's `pdftotext -bbox` (one process for the file), when installed;
//   - by OCR: each page rendered at 200 dpi and read by PP-OCRv4 (OCR_PAGES of them);
// pages/s of each (the best of 3 runs after a warm one; OCR: one), and the ratios the issue sets: text layer / OCR >= 50x, / pdftotext >= 0.3x.
// Run alone: node --conditions=@marie/source --import tsx bench/ocr/text-layer.ts
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OcrEngine, textLayerPage } from '@marie/ocr';
import { docsFromAsset, pdfTextLayer } from '@marie/storage';
import { PDFDocument, StandardFonts } from 'pdf-lib';

const run = promisify(execFile);
const PAGES = 36;
const OCR_PAGES = Number(process.env.OCR_PAGES ?? 4);

const PROSE =
  'The committee met on the third Tuesday of the month to review the budget for the coming year and the progress of the building works on the east wing of the library';

async function manual(file: string): Promise<void> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.TimesRoman);
  const words = PROSE.split(' ');
  for (let p = 0; p < PAGES; p++) {
    const page = doc.addPage([612, 792]);
    page.drawText(`Chapter ${p + 1}`, { x: 72, y: 730, size: 16, font });
    const columns = p % 3 === 1 ? 2 : 1;
    const width = columns === 2 ? 220 : 468;
    for (let c = 0; c < columns; c++) {
      let y = 700;
      let line: string[] = [];
      let k = p * 7 + c;
      while (y > 80) {
        const next = words[k++ % words.length]!;
        if (font.widthOfTextAtSize([...line, next].join(' '), 10) > width) {
          page.drawText(line.join(' '), { x: 72 + c * 248, y, size: 10, font });
          line = [];
          y -= 13;
        }
        line.push(next);
      }
    }
    if (p % 6 === 5)
      for (let r = 0; r < 8; r++)
        for (let c = 0; c < 4; c++)
          page.drawText(`${r}.${c} cell`, { x: 72 + c * 110, y: 300 - r * 14, size: 9, font });
  }
  writeFileSync(file, await doc.save());
}

export interface TextLayerRow {
  label: string;
  pagesPerS: number;
}

export async function textLayerRows(engine?: OcrEngine): Promise<TextLayerRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'marie-bench-text-'));
  const file = join(dir, 'manual.pdf');
  await manual(file);
  const rows: TextLayerRow[] = [];
  // Warm once (the module, pdfjs's fonts, the JIT), then the best of `reps` runs.
  const time = async (label: string, pages: number, fn: () => Promise<unknown>, reps = 3) => {
    await fn();
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      await fn();
      best = Math.min(best, performance.now() - t);
    }
    const row = { label, pagesPerS: (pages / best) * 1000 };
    rows.push(row);
    return row;
  };
  const layer = await time('text layer (words, boxes, order)', PAGES, async () => {
    const layers = (await pdfTextLayer(file))!;
    for (const l of layers) textLayerPage(l);
  });
  const lib = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const root = createRequire(import.meta.url)
    .resolve('pdfjs-dist/package.json')
    .replace(/package\.json$/, '');
  const { readFileSync } = await import('node:fs');
  await time('pdfjs getTextContent (bare)', PAGES, async () => {
    const doc = await lib.getDocument({
      data: new Uint8Array(readFileSync(file)),
      standardFontDataUrl: join(root, 'standard_fonts/'),
      isEvalSupported: false,
      verbosity: 0,
    }).promise;
    for (let i = 1; i <= doc.numPages; i++) await (await doc.getPage(i)).getTextContent();
    await doc.destroy();
  });
  let poppler: TextLayerRow | undefined;
  try {
    await run('pdftotext', ['-v']);
    poppler = await time('pdftotext -bbox (poppler)', PAGES, () =>
      run('pdftotext', ['-bbox', '-r', '200', file, join(dir, 'out.html')]),
    );
  } catch {}
  const own = !engine;
  const ocr = engine ?? (await OcrEngine.create());
  const ocrRow = await time(
    `OCR (render 200 dpi + PP-OCRv4), ${OCR_PAGES} pages`,
    OCR_PAGES,
    async () => {
      const docs = await docsFromAsset(file, {
        pages: Array.from({ length: OCR_PAGES }, (_, i) => i),
      });
      await Promise.all(
        docs.map((d) =>
          ocr.ocr({
            data: d.tensor!.data as Uint8Array,
            width: d.tensor!.shape[1]!,
            height: d.tensor!.shape[0]!,
          }),
        ),
      );
    },
  );
  if (own) await ocr.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`text layer against OCR and poppler (${PAGES}-page born-digital PDF):`);
  for (const r of rows)
    console.log(`  ${r.label.padEnd(44)} ${r.pagesPerS.toFixed(1).padStart(8)} pages/s`);
  console.log(
    `  text layer / OCR ${(layer.pagesPerS / ocrRow.pagesPerS).toFixed(0)}x (target >= 50x)` +
      (poppler
        ? `; text layer / pdftotext ${(layer.pagesPerS / poppler.pagesPerS).toFixed(2)}x (target >= 0.3x)`
        : '; pdftotext not installed (apt-get install poppler-utils)'),
  );
  return rows;
}

if (import.meta.filename === process.argv[1]) await textLayerRows();
