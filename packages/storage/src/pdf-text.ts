import { ErrorCode } from '@marie/core';
import { openPdf, readAsset, sniffAssetType } from './docs-from-asset.js';
import { describe, StorageError } from './errors.js';
import { StorageManager } from './objects/storage-manager.js';

/** A box in the rendered page's pixels: x, y, width, height. */
export type PixelBox = [number, number, number, number];

/** A word of a PDF page's text layer, placed where the page renders it at the layer's dpi. */
export interface TextLayerWord {
  text: string;
  box: PixelBox;
  /** Font size in pixels (the em height). */
  size: number;
  /** Reading direction on the rendered page, degrees clockwise: 0, 90, 180 or 270. */
  dir: 0 | 90 | 180 | 270;
  /** Drawn in text render mode 3 or 7: invisible (scanners' and OCR tools' layers). */
  invisible: boolean;
}

/** What a PDF page holds as text and as pictures, read without rendering it. */
export interface TextLayerPage {
  /** 0-based. */
  page: number;
  /** The rendered page's size in pixels at `dpi` (as docsFromAsset renders it). */
  width: number;
  height: number;
  dpi: number;
  /** In drawing order. */
  words: TextLayerWord[];
  /** Where images are painted (scans, photos, pasted pictures), clipped to the page. */
  images: PixelBox[];
  /** The share of the page the images cover together (0-1). */
  imageCoverage: number;
  /** Glyphs drawn, not counting spaces. */
  chars: number;
  /** Glyphs without a usable Unicode mapping (none, U+FFFD, private use, control characters). */
  unmapped: number;
  /** Glyphs drawn invisibly (render mode 3 or 7). */
  invisibleChars: number;
}

export interface TextLayerOptions {
  /** 0-based pages; empty or absent means all. */
  pages?: readonly number[];
  /** The resolution whose pixels the boxes are in (200, as docsFromAsset renders). */
  dpi?: number;
  storage?: StorageManager;
  /** The PDF's password, when it is encrypted. */
  password?: string;
}

/**
 * The text layer of a PDF's pages (pdfjs-dist's operator list, no rendering): each glyph placed
 * through the text state, the text matrix and the current transformation as a renderer places
 * it, grouped into words; with where images are painted and how much of the page they cover.
 * Undefined for an asset that is not a PDF. A wrong password or a page out of range: an error
 * naming the asset.
 */
export async function pdfTextLayer(
  assetKey: string,
  options: TextLayerOptions = {},
): Promise<TextLayerPage[] | undefined> {
  const dpi = options.dpi ?? 200;
  const bytes = await readAsset(options.storage ?? new StorageManager(), assetKey);
  // An image has no text layer: undefined (docsFromAsset reads it, or refuses what it is not).
  if (sniffAssetType(bytes) !== 'pdf') return undefined;
  let opened: Awaited<ReturnType<typeof openPdf>>;
  try {
    opened = await openPdf(assetKey, bytes, options.pages ?? [], options.password);
  } catch (err) {
    throw err instanceof StorageError
      ? err
      : new StorageError(`${assetKey}: cannot read this PDF: ${describe(err)}`, {
          code: ErrorCode.InvalidArgument,
        });
  }
  const { lib, doc, pages } = opened;
  try {
    const out: TextLayerPage[] = [];
    for (const index of pages) {
      const page = await doc.getPage(index + 1);
      try {
        const viewport = page.getViewport({ scale: dpi / 72 });
        const ops = await page.getOperatorList();
        out.push({
          page: index,
          width: Math.ceil(viewport.width),
          height: Math.ceil(viewport.height),
          dpi,
          ...readOperators(lib.OPS, ops, page.commonObjs, viewport),
        });
      } finally {
        page.cleanup();
      }
    }
    return out;
  } catch (err) {
    if (err instanceof StorageError) throw err;
    throw new StorageError(`${assetKey}: cannot read this PDF's text: ${describe(err)}`, {
      code: ErrorCode.InvalidArgument,
    });
  } finally {
    await doc.destroy();
  }
}

type M = [number, number, number, number, number, number];
const IDENTITY: M = [1, 0, 0, 1, 0, 0];
/** `m` then `n` (PDF's row-vector order: a point goes through m first). */
const mul = (m: M, n: M): M => [
  m[0] * n[0] + m[1] * n[2],
  m[0] * n[1] + m[1] * n[3],
  m[2] * n[0] + m[3] * n[2],
  m[2] * n[1] + m[3] * n[3],
  m[4] * n[0] + m[5] * n[2] + n[4],
  m[4] * n[1] + m[5] * n[3] + n[5],
];
const apply = (m: M, x: number, y: number): [number, number] => [
  m[0] * x + m[2] * y + m[4],
  m[1] * x + m[3] * y + m[5],
];
const matrix = (args: unknown[]): M => {
  const a = args.length === 1 ? Array.from(args[0] as ArrayLike<number>) : (args as number[]);
  return [a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!].map(Number) as M;
};

interface Glyph {
  unicode: string;
  width: number;
  isSpace: boolean;
}
interface Font {
  name?: string;
  fontMatrix?: number[];
  ascent?: number;
  descent?: number;
  vertical?: boolean;
}
interface Char {
  text: string;
  /** Device corners' bounds. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** The baseline origin and the advance's direction, in device pixels. */
  ox: number;
  oy: number;
  dir: 0 | 90 | 180 | 270;
  size: number;
  invisible: boolean;
  space: boolean;
}

function unmappedChar(u: string): boolean {
  if (!u) return true;
  for (const ch of u) {
    const c = ch.codePointAt(0)!;
    if (c === 0xfffd || (c >= 0xe000 && c <= 0xf8ff) || c < 0x20 || (c >= 0x7f && c < 0xa0))
      return true;
  }
  return false;
}

function readOperators(
  OPS: Record<string, number>,
  ops: { fnArray: number[]; argsArray: unknown[][] },
  fonts: { has(name: string): boolean; get(name: string): unknown },
  viewport: { transform: number[]; width: number; height: number },
): Omit<TextLayerPage, 'page' | 'width' | 'height' | 'dpi'> {
  const device = matrix(viewport.transform);
  const W = viewport.width;
  const H = viewport.height;
  let ctm: M = IDENTITY;
  const stack: M[] = [];
  // Text state (PDF 9.3) and the text and line matrices; x, y: the pen in text space.
  let font: Font = {};
  let size = 0;
  let charSpacing = 0;
  let wordSpacing = 0;
  let hScale = 1;
  let leading = 0;
  let rise = 0;
  let mode = 0;
  let tm: M = IDENTITY;
  let x = 0;
  let y = 0;
  let lineX = 0;
  let lineY = 0;
  const chars: Char[] = [];
  const images: PixelBox[] = [];
  let count = 0;
  let unmapped = 0;
  let invisibleChars = 0;
  const op = (name: string) => OPS[name] ?? -1;
  const code = {
    save: op('save'),
    restore: op('restore'),
    transform: op('transform'),
    beginText: op('beginText'),
    setCharSpacing: op('setCharSpacing'),
    setWordSpacing: op('setWordSpacing'),
    setHScale: op('setHScale'),
    setLeading: op('setLeading'),
    setFont: op('setFont'),
    setTextRenderingMode: op('setTextRenderingMode'),
    setTextRise: op('setTextRise'),
    moveText: op('moveText'),
    setLeadingMoveText: op('setLeadingMoveText'),
    setTextMatrix: op('setTextMatrix'),
    nextLine: op('nextLine'),
    showText: op('showText'),
    showSpacedText: op('showSpacedText'),
    nextLineShowText: op('nextLineShowText'),
    nextLineSetSpacingShowText: op('nextLineSetSpacingShowText'),
    formBegin: op('paintFormXObjectBegin'),
    formEnd: op('paintFormXObjectEnd'),
  };
  const imageOps = new Set(
    [
      'paintImageXObject',
      'paintInlineImageXObject',
      'paintImageMaskXObject',
      'paintJpegXObject',
      'paintImageXObjectRepeat',
      'paintImageMaskXObjectRepeat',
      'paintInlineImageXObjectGroup',
      'paintImageMaskXObjectGroup',
      'paintSolidColorImageMask',
    ].map(op),
  );
  const moveText = (tx: number, ty: number) => {
    lineX += tx;
    lineY += ty;
    x = lineX;
    y = lineY;
  };
  const show = (glyphs: (Glyph | number | null)[]) => {
    const fm = font.fontMatrix ?? [0.001, 0, 0, 0.001, 0, 0];
    const advanceScale = size * fm[0]!;
    // The standard 14 fonts are not in the file: their metrics are Adobe's (as poppler's and
    // other readers' boxes have them), not those of the face pdfjs draws them with.
    const std = STANDARD_METRICS[font.name?.replace(/^[A-Z]{6}\+/, '').split(/[-,]/)[0] ?? ''];
    const ascent = std?.[0] ?? (font.ascent && font.ascent > 0 ? font.ascent : 0.8);
    const descent = std?.[1] ?? (font.descent && font.descent < 0 ? font.descent : -0.2);
    const invisible = mode === 3 || mode === 7;
    // Text space to device: the text matrix, the current transformation, the page's viewport.
    const toDevice = mul(mul(tm, ctm), device);
    const em = Math.abs(size);
    // The device length of one em along the text's vertical (its size in pixels).
    const [ux, uy] = apply(toDevice, 0, em);
    const [u0x, u0y] = apply(toDevice, 0, 0);
    const sizePx = Math.hypot(ux - u0x, uy - u0y);
    let pen = 0;
    for (const g of glyphs) {
      if (g === null || g === undefined) continue;
      if (typeof g === 'number') {
        pen -= (g * size) / 1000;
        continue;
      }
      const adv = g.width * advanceScale;
      const spacing = (g.isSpace ? wordSpacing : 0) + charSpacing;
      if (!g.isSpace && g.unicode !== ' ') {
        const gx0 = x + pen * hScale;
        const gx1 = x + (pen + adv) * hScale;
        const by = y + rise;
        const ya = by + descent * em;
        const yb = by + ascent * em;
        const t = toDevice;
        // The four corners' device bounds, without arrays (this runs per glyph).
        const ax = t[0] * gx0 + t[2] * ya;
        const bx = t[0] * gx1 + t[2] * ya;
        const cx = t[0] * gx0 + t[2] * yb;
        const dx = t[0] * gx1 + t[2] * yb;
        const ay = t[1] * gx0 + t[3] * ya;
        const by2 = t[1] * gx1 + t[3] * ya;
        const cy = t[1] * gx0 + t[3] * yb;
        const dy = t[1] * gx1 + t[3] * yb;
        const ox = t[0] * gx0 + t[2] * by + t[4];
        const oy = t[1] * gx0 + t[3] * by + t[5];
        const angle = dirOf(t[0], t[1]);
        count++;
        const bad = unmappedChar(g.unicode);
        if (bad) unmapped++;
        if (invisible) invisibleChars++;
        chars.push({
          text: bad
            ? '\ufffd'
            : g.unicode.charCodeAt(0) < 128
              ? g.unicode
              : g.unicode.normalize('NFKC'),
          x0: Math.min(ax, bx, cx, dx) + t[4],
          y0: Math.min(ay, by2, cy, dy) + t[5],
          x1: Math.max(ax, bx, cx, dx) + t[4],
          y1: Math.max(ay, by2, cy, dy) + t[5],
          ox,
          oy,
          dir: angle,
          size: sizePx,
          invisible,
          space: false,
        });
      } else chars.push({ ...spaceMark, invisible });
      pen += adv + spacing;
    }
    x += pen * hScale;
  };
  for (let i = 0; i < ops.fnArray.length; i++) {
    const fn = ops.fnArray[i]!;
    const a = ops.argsArray[i] ?? [];
    if (fn === code.save) stack.push(ctm);
    else if (fn === code.restore) ctm = stack.pop() ?? IDENTITY;
    else if (fn === code.transform) ctm = mul(matrix(a), ctm);
    else if (fn === code.beginText) {
      tm = IDENTITY;
      x = y = lineX = lineY = 0;
    } else if (fn === code.setCharSpacing) charSpacing = Number(a[0]);
    else if (fn === code.setWordSpacing) wordSpacing = Number(a[0]);
    else if (fn === code.setHScale) hScale = Number(a[0]) / 100;
    else if (fn === code.setLeading) leading = -Number(a[0]);
    else if (fn === code.setFont) {
      const name = String(a[0]);
      font = fonts.has(name) ? ((fonts.get(name) as Font) ?? {}) : {};
      size = Number(a[1]);
    } else if (fn === code.setTextRenderingMode) mode = Number(a[0]);
    else if (fn === code.setTextRise) rise = Number(a[0]);
    else if (fn === code.moveText) moveText(Number(a[0]), Number(a[1]));
    else if (fn === code.setLeadingMoveText) {
      leading = Number(a[1]);
      moveText(Number(a[0]), Number(a[1]));
    } else if (fn === code.setTextMatrix) {
      tm = matrix(a);
      x = y = lineX = lineY = 0;
    } else if (fn === code.nextLine) moveText(0, leading);
    else if (fn === code.showText || fn === code.showSpacedText)
      show(a[0] as (Glyph | number | null)[]);
    else if (fn === code.nextLineShowText) {
      moveText(0, leading);
      show(a[0] as (Glyph | number | null)[]);
    } else if (fn === code.nextLineSetSpacingShowText) {
      wordSpacing = Number(a[0]);
      charSpacing = Number(a[1]);
      moveText(0, leading);
      show(a[2] as (Glyph | number | null)[]);
    } else if (fn === code.formBegin) {
      stack.push(ctm);
      if (a[0]) ctm = mul(matrix([a[0]]), ctm);
    } else if (fn === code.formEnd) ctm = stack.pop() ?? IDENTITY;
    else if (imageOps.has(fn)) {
      // An image fills the unit square of the current transformation.
      const d = mul(ctm, device);
      const pts = [apply(d, 0, 0), apply(d, 1, 0), apply(d, 0, 1), apply(d, 1, 1)];
      const x0 = Math.max(0, Math.min(...pts.map((p) => p[0])));
      const y0 = Math.max(0, Math.min(...pts.map((p) => p[1])));
      const x1 = Math.min(W, Math.max(...pts.map((p) => p[0])));
      const y1 = Math.min(H, Math.max(...pts.map((p) => p[1])));
      if (x1 - x0 >= 1 && y1 - y0 >= 1) images.push([x0, y0, x1 - x0, y1 - y0]);
    }
  }
  return {
    words: toWords(chars),
    images,
    imageCoverage: coverage(images, W, H),
    chars: count,
    unmapped,
    invisibleChars,
  };
}

/** Ascender and descender of the standard 14 fonts' families (Adobe's AFM files), per em. */
const STANDARD_METRICS: Record<string, [number, number]> = {
  Helvetica: [0.718, -0.207],
  Arial: [0.718, -0.207],
  Times: [0.683, -0.217],
  TimesNewRoman: [0.683, -0.217],
  Courier: [0.629, -0.157],
  CourierNew: [0.629, -0.157],
};

/** The reading direction of text whose advance is (a, b) on the device, to the nearest quarter. */
function dirOf(a: number, b: number): Char['dir'] {
  if (Math.abs(a) >= Math.abs(b)) return a >= 0 ? 0 : 180;
  return b >= 0 ? 90 : 270;
}

const spaceMark: Char = {
  text: ' ',
  x0: 0,
  y0: 0,
  x1: 0,
  y1: 0,
  ox: 0,
  oy: 0,
  dir: 0,
  size: 0,
  invisible: false,
  space: true,
};

/**
 * Glyphs in drawing order into words: a word ends at a space glyph, a change of direction or
 * line, or a gap wider than 0.2 em between glyphs (TeX and others place words without spaces;
 * kerning stays well under that).
 */
function toWords(chars: Char[]): TextLayerWord[] {
  const words: TextLayerWord[] = [];
  let cur: Char[] = [];
  const flush = () => {
    if (!cur.length) return;
    const x0 = Math.min(...cur.map((c) => c.x0));
    const y0 = Math.min(...cur.map((c) => c.y0));
    const x1 = Math.max(...cur.map((c) => c.x1));
    const y1 = Math.max(...cur.map((c) => c.y1));
    words.push({
      text: cur.map((c) => c.text).join(''),
      box: [round(x0), round(y0), round(x1 - x0), round(y1 - y0)],
      size: round(Math.max(...cur.map((c) => c.size))),
      dir: cur[0]!.dir,
      invisible: cur.every((c) => c.invisible),
    });
    cur = [];
  };
  for (const c of chars) {
    if (c.space) {
      flush();
      continue;
    }
    const last = cur.at(-1);
    if (last) {
      // Along the reading direction: the gap from the last glyph's end; across it: the baseline.
      const along = (p: Char) =>
        p.dir === 0
          ? [p.x0, p.x1]
          : p.dir === 180
            ? [-p.x1, -p.x0]
            : p.dir === 90
              ? [p.y0, p.y1]
              : [-p.y1, -p.y0];
      const across = (p: Char) => (p.dir === 0 || p.dir === 180 ? p.oy : p.ox);
      const gap = along(c)[0]! - along(last)[1]!;
      const em = Math.max(c.size, last.size, 1);
      if (
        c.dir !== last.dir ||
        Math.abs(across(c) - across(last)) > 0.3 * em ||
        gap > 0.2 * em ||
        gap < -0.5 * em
      )
        flush();
    }
    cur.push(c);
  }
  flush();
  return words;
}

/** The share of a W x H page that boxes cover together, on a grid of at most 256 x 256 cells. */
function coverage(boxes: PixelBox[], W: number, H: number): number {
  if (!boxes.length || W <= 0 || H <= 0) return 0;
  const n = 256;
  const cw = W / n;
  const ch = H / n;
  const grid = new Uint8Array(n * n);
  for (const [x, y, w, h] of boxes)
    for (let j = Math.floor(y / ch); j < Math.min(n, Math.ceil((y + h) / ch)); j++)
      for (let i = Math.floor(x / cw); i < Math.min(n, Math.ceil((x + w) / cw)); i++)
        grid[j * n + i] = 1;
  let covered = 0;
  for (const v of grid) covered += v;
  return covered / (n * n);
}

const round = (v: number) => Math.round(v * 10) / 10;
