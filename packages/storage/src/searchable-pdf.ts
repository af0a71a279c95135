import { ErrorCode } from '@marie/core';
import {
  beginText,
  endText,
  PDFDocument,
  type PDFFont,
  type PDFPage,
  popGraphicsState,
  pushGraphicsState,
  StandardFonts,
  setCharacterSqueeze,
  setFontAndSize,
  setTextMatrix,
  setTextRenderingMode,
  showText,
  TextRenderingMode,
} from 'pdf-lib';
import { openPdf, sniffAssetType } from './docs-from-asset.js';
import { describe, StorageError } from './errors.js';

/** The words of one page, with boxes in the page's rendered pixels at `dpi` (an OCR answer). */
export interface SearchablePage {
  /** 0-based page of the input. */
  page: number;
  dpi: number;
  words: {
    text: string;
    box: [number, number, number, number];
    /** Its reading direction on the rendered page, degrees clockwise (0: OCR's upright words). */
    dir?: 0 | 90 | 180 | 270;
  }[];
}

/**
 * A searchable PDF, as ocrmypdf makes them: the input PDF (or its images, one page each) with an
 * invisible text layer (render mode 3) placed on the words, so that a viewer can select and search
 * them. Each word is written at its box: the font size from the box's height, squeezed or stretched
 * (Tz) to its width, turned with the page when the page is rotated. Helvetica's WinAnsi encoding
 * holds the text: a character it lacks is written without its accent, or as `?`.
 */
export async function searchablePdf(
  input: Uint8Array,
  pages: readonly SearchablePage[],
  options: { name?: string; password?: string } = {},
): Promise<Uint8Array> {
  const name = options.name ?? 'input';
  const type = sniffAssetType(input);
  if (!type)
    throw new StorageError(`${name}: not a PNG, JPEG, TIFF or PDF`, {
      code: ErrorCode.InvalidArgument,
    });
  try {
    const doc = type === 'pdf' ? await PDFDocument.load(input) : await PDFDocument.create();
    // Where each page's pixels sit on the page: pdfjs's viewport transform, inverted.
    const transforms =
      type === 'pdf'
        ? await viewports(name, input, pages, options.password)
        : await imagePages(doc, input, type, pages);
    const font = await doc.embedFont(StandardFonts.Helvetica);
    for (const p of pages) {
      const page = doc.getPage(p.page);
      const toUser = transforms.get(p.page);
      if (!toUser) continue;
      writeWords(page, font, p, toUser);
    }
    return await doc.save();
  } catch (err) {
    if (err instanceof StorageError) throw err;
    throw new StorageError(`${name}: cannot write a searchable PDF: ${describe(err)}`, {
      code: ErrorCode.InvalidArgument,
    });
  }
}

type M = [number, number, number, number, number, number];
const invert = ([a, b, c, d, e, f]: M): M => {
  const det = a * d - b * c;
  return [d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det];
};
const apply = (m: M, x: number, y: number): [number, number] => [
  m[0] * x + m[2] * y + m[4],
  m[1] * x + m[3] * y + m[5],
];

async function viewports(
  name: string,
  input: Uint8Array,
  pages: readonly SearchablePage[],
  password?: string,
): Promise<Map<number, M>> {
  const { doc, pages: checked } = await openPdf(
    name,
    input,
    pages.map((p) => p.page),
    password,
  );
  try {
    const out = new Map<number, M>();
    for (const [i, index] of checked.entries()) {
      const page = await doc.getPage(index + 1);
      const vp = page.getViewport({ scale: pages[i]!.dpi / 72 });
      out.set(index, invert(vp.transform as M));
    }
    return out;
  } finally {
    await doc.destroy();
  }
}

/** Images become pages (one per TIFF page), each drawn over its whole page at its dpi. */
async function imagePages(
  doc: PDFDocument,
  input: Uint8Array,
  type: 'png' | 'jpeg' | 'tiff',
  pages: readonly SearchablePage[],
): Promise<Map<number, M>> {
  const { default: sharp } = await import('sharp');
  const count = type === 'tiff' ? ((await sharp(input).metadata()).pages ?? 1) : 1;
  const out = new Map<number, M>();
  for (let i = 0; i < count; i++) {
    const dpi = pages.find((p) => p.page === i)?.dpi ?? 72;
    const png = await sharp(input, type === 'tiff' ? { page: i } : {})
      .png()
      .toBuffer({ resolveWithObject: true });
    const img = await doc.embedPng(png.data);
    const w = (png.info.width * 72) / dpi;
    const h = (png.info.height * 72) / dpi;
    const page = doc.addPage([w, h]);
    page.drawImage(img, { x: 0, y: 0, width: w, height: h });
    // Pixels (top-left origin) to points (bottom-left origin).
    out.set(i, [72 / dpi, 0, 0, -72 / dpi, 0, h]);
  }
  return out;
}

/** Helvetica's ascender and descender (Adobe's AFM), per em. */
const ASCENT = 0.718;
const DESCENT = -0.207;

function winAnsi(font: PDFFont, text: string): string {
  const chars = font.getCharacterSet();
  let out = '';
  for (const ch of text) {
    if (chars.includes(ch.codePointAt(0)!)) out += ch;
    else {
      const plain = ch.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
      out += [...plain].every((c) => chars.includes(c.codePointAt(0)!)) && plain ? plain : '?';
    }
  }
  return out;
}

function writeWords(page: PDFPage, font: PDFFont, p: SearchablePage, toUser: M): void {
  const ops = [];
  let key: ReturnType<PDFPage['node']['newFontDictionary']> | undefined;
  for (const w of p.words) {
    const text = winAnsi(font, w.text.trim());
    if (!text) continue;
    const [x, y, bw, bh] = w.box;
    // In the rendered page's pixels: where the baseline starts, where it ends, and a point above
    // its start (the text's up), by the word's direction; then on the page (points).
    const [o, r, u] = {
      0: [
        [x, y + bh],
        [x + bw, y + bh],
        [x, y],
      ],
      90: [
        [x, y],
        [x, y + bh],
        [x + bw, y],
      ],
      180: [
        [x + bw, y],
        [x, y],
        [x + bw, y + bh],
      ],
      270: [
        [x + bw, y + bh],
        [x + bw, y],
        [x, y + bh],
      ],
    }[w.dir ?? 0] as [[number, number], [number, number], [number, number]];
    const [ox, oy] = apply(toUser, o[0], o[1]);
    const [rx, ry] = apply(toUser, r[0], r[1]);
    const [ux, uy] = apply(toUser, u[0], u[1]);
    const width = Math.hypot(rx - ox, ry - oy);
    const height = Math.hypot(ux - ox, uy - oy);
    if (width < 0.01 || height < 0.01) continue;
    const size = height / (ASCENT - DESCENT);
    const natural = font.widthOfTextAtSize(text, size);
    const squeeze = natural > 0 ? (100 * width) / natural : 100;
    // The text matrix: unit vectors along the reading and upward directions, the baseline origin.
    const [cx, cy] = [(rx - ox) / width, (ry - oy) / width];
    const [vx, vy] = [(ux - ox) / height, (uy - oy) / height];
    const bx = ox - DESCENT * size * vx;
    const by = oy - DESCENT * size * vy;
    // The font's resource name on this page.
    key ??= page.node.newFontDictionary(font.name, font.ref);
    ops.push(
      beginText(),
      setFontAndSize(key, size),
      setTextRenderingMode(TextRenderingMode.Invisible),
      setCharacterSqueeze(squeeze),
      setTextMatrix(cx, cy, vx, vy, bx, by),
      // A space after the word: readers split words at spaces, and OCR boxes may touch.
      showText(font.encodeText(`${text} `)),
      endText(),
    );
  }
  if (ops.length) page.pushOperators(pushGraphicsState(), ...ops, popGraphicsState());
}
