import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fontkit from '@pdf-lib/fontkit';
import {
  beginText,
  degrees,
  endText,
  moveText,
  PDFDocument,
  type PDFFont,
  PDFHexString,
  PDFName,
  type PDFPage,
  popGraphicsState,
  pushGraphicsState,
  StandardFonts,
  setFontAndSize,
  setTextRenderingMode,
  showText,
  TextRenderingMode,
} from 'pdf-lib';
import sharp from 'sharp';
import { docsFromAsset } from '../../src/docs-from-asset.js';

// The text-layer test set, made here with pdf-lib (no files from elsewhere): born-digital pages
// in one and two columns, a table, a rotated page, standard and embedded TrueType fonts, a page
// that is one embedded scan image, and a mixed page (text and a pasted scan of a paragraph).

/** Debian's fonts-dejavu-core (.ci/run installs it): the embedded TrueType font. */
export const TTF = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

export const PROSE = [
  'The quarterly statement lists every invoice received since the first of March.',
  'Payments are due within thirty days of the invoice date unless agreed otherwise.',
  'Questions about a charge should name the invoice number and the amount in dispute.',
  'Late payments carry a fee of two percent per month on the outstanding balance.',
  'This document was produced by the accounts department and needs no signature.',
  'Keep a copy of this statement with your records for at least seven years.',
];
export const LEFT = [
  'Column one begins here',
  'with a short paragraph',
  'about the shipment that',
  'arrived on the fourth.',
  'Two crates were damaged',
  'and were sent back.',
];
export const RIGHT = [
  'Column two continues',
  'with the claim number',
  'and the adjuster name',
  'Margaret Holloway who',
  'will call on Tuesday',
  'before noon.',
];
export const TABLE = [
  ['Item', 'Qty', 'Price', 'Total'],
  ['Bolts', '120', '0.25', '30.00'],
  ['Washers', '300', '0.05', '15.00'],
  ['Brackets', '12', '4.10', '49.20'],
  ['Hinges', '8', '6.75', '54.00'],
];
export const SCANNED = [
  'This paragraph was scanned',
  'from a paper letter and',
  'pasted into the document.',
];

export interface TextPdfs {
  /** Born-digital pages: 0 one column, 1 two columns, 2 a table, 3 rotated, 4 TrueType. */
  digital: string;
  /** One page: a scan (one image, no text). */
  scan: string;
  /** One page: text above, a pasted scan of a paragraph below. */
  mixed: string;
  /** One page with an invisible text layer (render mode 3) over a scan, as OCR tools write. */
  invisible: string;
  /** One page of glyphs without a Unicode mapping (a Type3 font, no ToUnicode, unknown names). */
  unmapped: string;
}

function lines(page: PDFPage, font: PDFFont, text: string[], x: number, y: number, size = 12) {
  for (const [i, t] of text.entries()) page.drawText(t, { x, y: y - i * size * 1.6, size, font });
}

/** A picture of text lines (rendered from a PDF of them here), as a PNG at 150 dpi. */
async function pictureOf(
  text: string[],
  width: number,
  size = 16,
  height?: number,
): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const h = height ?? text.length * size * 1.6 + 24;
  const page = doc.addPage([width, h]);
  lines(page, font, text, height ? 20 : 12, h - (height ? 30 : 12) - size, size);
  const bytes = await doc.save();
  const file = join(process.env.TMPDIR ?? '/tmp', `marie-picture-${process.pid}-${Date.now()}.pdf`);
  writeFileSync(file, bytes);
  const [p] = await docsFromAsset(file, { dpi: 150 });
  const t = p!.tensor!;
  return sharp(Buffer.from(t.data as Uint8Array), {
    raw: { width: t.shape[1]!, height: t.shape[0]!, channels: 3 },
  })
    .png()
    .toBuffer();
}

export async function makeTextPdfs(dir: string): Promise<TextPdfs> {
  const doc = await PDFDocument.create();
  doc.registerFontkit(fontkit);
  const helvetica = await doc.embedFont(StandardFonts.Helvetica);
  const times = await doc.embedFont(StandardFonts.TimesRoman);
  const courier = await doc.embedFont(StandardFonts.Courier);
  // One column.
  const one = doc.addPage([612, 792]);
  one.drawText('Statement of Account', { x: 72, y: 720, size: 20, font: helvetica });
  lines(one, helvetica, PROSE, 72, 680, 11);
  // Two columns.
  const two = doc.addPage([612, 792]);
  two.drawText('Shipment Report', { x: 72, y: 720, size: 18, font: times });
  lines(two, times, LEFT, 72, 680);
  lines(two, times, RIGHT, 330, 680);
  // A table.
  const table = doc.addPage([612, 792]);
  for (const [r, row] of TABLE.entries())
    for (const [c, cell] of row.entries())
      table.drawText(cell, { x: 72 + c * 110, y: 700 - r * 24, size: 12, font: courier });
  // Rotated: shown a quarter turn clockwise.
  const rotated = doc.addPage([612, 792]);
  rotated.setRotation(degrees(90));
  lines(rotated, helvetica, PROSE.slice(0, 3), 72, 700);
  // An embedded TrueType font (subset).
  const ttfPage = doc.addPage([612, 792]);
  if (existsSync(TTF)) {
    const dejavu = await doc.embedFont(readFileSync(TTF), { subset: true });
    lines(ttfPage, dejavu, PROSE.slice(2, 6), 72, 700);
  } else throw new Error(`${TTF} is missing: apt-get install fonts-dejavu-core`);
  const digital = join(dir, 'digital.pdf');
  writeFileSync(digital, await doc.save());

  // A scan: one page that is one picture of text.
  const scanDoc = await PDFDocument.create();
  const scanPage = scanDoc.addPage([612, 792]);
  const pic = await scanDoc.embedPng(await pictureOf(PROSE.slice(0, 4), 612, 14, 792));
  scanPage.drawImage(pic, { x: 0, y: 0, width: 612, height: 792 });
  const scan = join(dir, 'scan.pdf');
  writeFileSync(scan, await scanDoc.save());

  // Mixed: text, and below it a pasted scan of a paragraph.
  const mixedDoc = await PDFDocument.create();
  const mixedFont = await mixedDoc.embedFont(StandardFonts.Helvetica);
  const mixedPage = mixedDoc.addPage([612, 792]);
  lines(mixedPage, mixedFont, PROSE.slice(0, 3), 72, 720, 11);
  const paragraph = await mixedDoc.embedPng(await pictureOf(SCANNED, 320));
  const ph = (paragraph.height / paragraph.width) * 320;
  mixedPage.drawImage(paragraph, { x: 72, y: 500 - ph, width: 320, height: ph });
  const mixed = join(dir, 'mixed.pdf');
  writeFileSync(mixed, await mixedDoc.save());

  // An invisible text layer (render mode 3) over a scan: what OCR tools write.
  const invDoc = await PDFDocument.create();
  const invFont = await invDoc.embedFont(StandardFonts.Helvetica);
  const invPage = invDoc.addPage([612, 792]);
  const invPic = await invDoc.embedPng(await pictureOf(PROSE.slice(0, 4), 612, 14, 792));
  invPage.drawImage(invPic, { x: 0, y: 0, width: 612, height: 792 });
  const key = invPage.node.newFontDictionary(invFont.name, invFont.ref);
  for (const [i, t] of PROSE.slice(0, 4).entries())
    invPage.pushOperators(
      pushGraphicsState(),
      beginText(),
      setFontAndSize(key, 14),
      setTextRenderingMode(TextRenderingMode.Invisible),
      moveText(20, 760 - i * 30),
      showText(invFont.encodeText(t)),
      endText(),
      popGraphicsState(),
    );
  const invisible = join(dir, 'invisible.pdf');
  writeFileSync(invisible, await invDoc.save());

  // Glyphs that map to no character: a Type3 font whose glyphs (bars) have names no list knows.
  const t3Doc = await PDFDocument.create();
  const t3Page = t3Doc.addPage([612, 792]);
  const ctx = t3Doc.context;
  const bar = ctx.register(ctx.stream('100 0 0 0 80 80 d1 10 0 60 80 re f'));
  const t3 = ctx.register(
    ctx.obj({
      Type: 'Font',
      Subtype: 'Type3',
      FontBBox: [0, 0, 100, 100],
      FontMatrix: [0.01, 0, 0, 0.01, 0, 0],
      CharProcs: ctx.obj({ xq1: bar, xq2: bar }),
      Encoding: ctx.obj({
        Type: 'Encoding',
        Differences: [1, PDFName.of('xq1'), PDFName.of('xq2')],
      }),
      FirstChar: 1,
      LastChar: 2,
      Widths: [100, 100],
      Resources: ctx.obj({}),
    }),
  );
  const t3Key = t3Page.node.newFontDictionary('T3', t3);
  for (let i = 0; i < 5; i++)
    t3Page.pushOperators(
      beginText(),
      setFontAndSize(t3Key, 12),
      moveText(72, 700 - i * 20),
      showText(PDFHexString.of('0102010201020102010201')),
      endText(),
    );
  const unmapped = join(dir, 'unmapped.pdf');
  writeFileSync(unmapped, await t3Doc.save());
  return { digital, scan, mixed, invisible, unmapped };
}
