import type { OcrLine, OcrPage, OcrWord } from './engine.js';
import type { RgbImage } from './image.js';
import { type Box, readingOrder } from './layout.js';

/** A PDF page's text layer as @marie/storage's `pdfTextLayer` reads it (boxes in page pixels). */
export interface TextLayer {
  width: number;
  height: number;
  words: {
    text: string;
    box: Box;
    size: number;
    dir: 0 | 90 | 180 | 270;
    invisible: boolean;
  }[];
  images: Box[];
  imageCoverage: number;
  chars: number;
  unmapped: number;
  invisibleChars: number;
}

/** Where a page's text comes from. */
export type PageSource = 'text' | 'ocr' | 'mixed';
export type SourceChoice = 'auto' | 'text' | 'ocr';

/**
 * The thresholds of `source: auto` (docling's for images; ours for text):
 * - `ocrAbove` 0.75: images covering more of the page than that are a scan: OCR the page (a
 *   visible text layer beside a full-page picture is a header or a stamp, not the page's text);
 * - `regionsAbove` 0.05: images covering more than that (and less than `ocrAbove`) are OCR'd alone
 *   and merged (a pasted scan of a paragraph); smaller ones are logos and rules;
 * - `minChars` 20: fewer glyphs beside images is no text layer (a page number or a stamp on a
 *   scan); a page without images takes even a few glyphs as its text, one without any glyph is
 *   OCR'd (a scan, or text drawn as outlines);
 * - `maxUnmapped` 0.1: more glyphs than that without a Unicode mapping (or mapped to garbage)
 *   and the layer is not trusted: OCR.
 */
export const SOURCE_THRESHOLDS = {
  ocrAbove: 0.75,
  regionsAbove: 0.05,
  minChars: 20,
  maxUnmapped: 0.1,
} as const;

export interface SourceDecision {
  source: PageSource;
  /** Why, in words (said in the answer's page meta). */
  reason: string;
  /** For `mixed`: the image regions to OCR, in page pixels. */
  regions: Box[];
}

/**
 * The source of a page's text (`source: auto`): its text layer when that is usable, OCR when
 * there is none, when its glyphs lack a Unicode mapping, or when images cover most of the page;
 * the text layer and OCR of its image regions when images cover part of it. An invisible layer
 * (render mode 3: what scanners and OCR tools write over the picture) is trusted under `auto`;
 * `source: ocr` redoes it, `source: text` takes the layer whatever it holds.
 */
export function chooseSource(
  layer: TextLayer | undefined,
  choice: SourceChoice = 'auto',
): SourceDecision {
  if (choice === 'ocr') return { source: 'ocr', reason: 'asked for OCR', regions: [] };
  if (!layer) return { source: 'ocr', reason: 'an image: no text layer', regions: [] };
  if (choice === 'text') return { source: 'text', reason: 'asked for the text layer', regions: [] };
  const t = SOURCE_THRESHOLDS;
  // No glyphs: a scan, or text drawn as paths (outlined): only OCR can read it.
  if (layer.chars === 0) return { source: 'ocr', reason: 'no text layer', regions: [] };
  // A few glyphs beside pictures: a page number or a stamp over a scan.
  if (layer.chars < t.minChars && layer.imageCoverage > t.regionsAbove)
    return {
      source: 'ocr',
      reason: `${layer.chars} glyphs beside images: too few for a text layer`,
      regions: [],
    };
  if (layer.unmapped / layer.chars > t.maxUnmapped)
    return {
      source: 'ocr',
      reason: `${Math.round((100 * layer.unmapped) / layer.chars)}% of its glyphs have no Unicode mapping`,
      regions: [],
    };
  const invisible = layer.invisibleChars / layer.chars > 0.5;
  if (layer.imageCoverage > t.ocrAbove && !invisible)
    return {
      source: 'ocr',
      reason: `images cover ${Math.round(100 * layer.imageCoverage)}% of it`,
      regions: [],
    };
  if (layer.imageCoverage > t.regionsAbove && !invisible) {
    // The images that hold no text of the layer themselves (a pasted scan, not a background).
    const regions = layer.images.filter(
      (b) =>
        area(b) >= 0.01 * layer.width * layer.height && !layer.words.some((w) => inside(w.box, b)),
    );
    if (regions.length)
      return {
        source: 'mixed',
        reason: `images cover ${Math.round(100 * layer.imageCoverage)}% of it: those OCR'd, the rest from its text layer`,
        regions,
      };
  }
  return {
    source: 'text',
    reason: invisible ? 'its invisible text layer (an OCR layer)' : 'its text layer',
    regions: [],
  };
}

/**
 * A text layer as a page in the OCR engine's shape: words (confidence 1) grouped into lines, lines
 * in reading order (top to bottom, columns kept apart, words left to right; readingOrder, as OCR
 * lines are). A line is the words on one baseline with gaps under 1.2 em between them, so that
 * two columns side by side stay two lines.
 */
export function textLayerPage(layer: Pick<TextLayer, 'width' | 'height' | 'words'>): OcrPage {
  const upright = linesOf(
    layer.words.filter((w) => w.dir === 0 && w.text.trim()),
    0,
  );
  const order = readingOrder(
    upright.map((l) => l.box),
    layer.width,
    upright.map((l) => l.words.length),
  );
  const lines = order.map((i) => upright[i]!);
  // Text turned on the page (a rotated page, a margin note) after it, each direction's lines in
  // their own reading order (linesOf gives them so).
  for (const dir of [90, 180, 270] as const) {
    const words = layer.words.filter((w) => w.dir === dir && w.text.trim());
    if (words.length) lines.push(...linesOf(words, dir));
  }
  return { width: layer.width, height: layer.height, lines };
}

type LayerWord = TextLayer['words'][number];

function linesOf(words: LayerWord[], dir: 0 | 90 | 180 | 270): OcrLine[] {
  // In the text's own frame: u along the reading direction, v across it (down the page).
  const frame = (b: Box): [number, number, number, number] => {
    const [x, y, w, h] = b;
    switch (dir) {
      case 90:
        return [y, -(x + w), h, w];
      case 180:
        return [-(x + w), -(y + h), w, h];
      case 270:
        return [-(y + h), x, h, w];
      default:
        return [x, y, w, h];
    }
  };
  const items = words
    .map((w) => ({ w, f: frame(w.box) }))
    .sort((a, b) => a.f[1] + a.f[3] - (b.f[1] + b.f[3]) || a.f[0] - b.f[0]);
  // Items come by baseline, then along it: a word joins the group it overlaps across (more than
  // half the lower height) and lies within 1.2 em of along. Only groups still reaching down to
  // the word can overlap it, so the search walks back from the newest and stops early.
  const groups: {
    items: typeof items;
    v0: number;
    v1: number;
    u0: number;
    u1: number;
    em: number;
  }[] = [];
  for (const it of items) {
    const [u, v, w, h] = it.f;
    const em = Math.max(it.w.size, 1);
    let hit: (typeof groups)[number] | undefined;
    for (let k = groups.length - 1; k >= 0 && k >= groups.length - 64; k--) {
      const g = groups[k]!;
      const overlap = Math.min(g.v1, v + h) - Math.max(g.v0, v);
      if (overlap < 0.5 * Math.min(h, g.v1 - g.v0)) continue;
      const gap = Math.max(g.u0 - (u + w), u - g.u1);
      if (gap < 1.2 * Math.max(em, g.em)) {
        hit = g;
        break;
      }
    }
    if (hit) {
      hit.items.push(it);
      hit.v0 = Math.min(hit.v0, v);
      hit.v1 = Math.max(hit.v1, v + h);
      hit.u0 = Math.min(hit.u0, u);
      hit.u1 = Math.max(hit.u1, u + w);
      hit.em = Math.max(hit.em, em);
    } else groups.push({ items: [it], v0: v, v1: v + h, u0: u, u1: u + w, em });
  }
  return groups.map((g) => {
    const ws = g.items.sort((a, b) => a.f[0] - b.f[0]).map((i) => i.w);
    // Whole pixels, as OCR gives them: the smallest pixel box around the glyphs.
    const ocr: OcrWord[] = ws.map((w) => ({ text: w.text, confidence: 1, box: pixels(w.box) }));
    const box = union(ocr.map((w) => w.box));
    const [x, y, w, h] = box;
    return {
      text: ocr.map((w) => w.text).join(' '),
      confidence: 1,
      box,
      quad: [
        [x, y],
        [x + w, y],
        [x + w, y + h],
        [x, y + h],
      ],
      words: ocr,
    } satisfies OcrLine;
  });
}

/**
 * A page's text layer with the OCR of some of its regions: OCR words that overlap a word of the
 * layer are dropped (the layer is exact where it has text), the rest join it; lines in reading
 * order again.
 */
export function mergeOcr(page: OcrPage, ocr: OcrLine[]): OcrPage {
  const have = page.lines.flatMap((l) => l.words.map((w) => w.box));
  const added: OcrLine[] = [];
  for (const l of ocr) {
    const words = l.words.filter((w) => !have.some((b) => overlapShare(w.box, b) > 0.3));
    if (!words.length) continue;
    if (words.length === l.words.length) added.push(l);
    else {
      const box = union(words.map((w) => w.box));
      const [x, y, w, h] = box;
      added.push({
        text: words.map((w) => w.text).join(' '),
        confidence: words.reduce((a, w) => a + w.confidence, 0) / words.length,
        box,
        quad: [
          [x, y],
          [x + w, y],
          [x + w, y + h],
          [x, y + h],
        ],
        words,
      });
    }
  }
  const lines = [...page.lines, ...added];
  const order = readingOrder(
    lines.map((l) => l.box),
    page.width,
    lines.map((l) => l.words.length),
  );
  return { width: page.width, height: page.height, lines: order.map((i) => lines[i]!) };
}

const area = (b: Box) => b[2] * b[3];
/** The share of `a` that `b` covers. */
function overlapShare(a: Box, b: Box): number {
  const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? (w * h) / Math.max(area(a), 1) : 0;
}
const inside = (a: Box, b: Box) => overlapShare(a, b) > 0.5;
function pixels([x, y, w, h]: Box): Box {
  const x0 = Math.floor(x + 1e-6);
  const y0 = Math.floor(y + 1e-6);
  return [x0, y0, Math.ceil(x + w - 1e-6) - x0, Math.ceil(y + h - 1e-6) - y0];
}

function union(boxes: Box[]): Box {
  const x0 = Math.min(...boxes.map((b) => b[0]));
  const y0 = Math.min(...boxes.map((b) => b[1]));
  const x1 = Math.max(...boxes.map((b) => b[0] + b[2]));
  const y1 = Math.max(...boxes.map((b) => b[1] + b[3]));
  const r = (v: number) => Math.round(v * 10) / 10;
  return [r(x0), r(y0), r(x1 - x0), r(y1 - y0)];
}

/** A page to read, where its text comes from (chooseSource), its layer and its image (rendered when asked). */
export interface SourcedPage {
  decision: SourceDecision;
  layer?: Pick<TextLayer, 'width' | 'height' | 'words'>;
  image: () => Promise<RgbImage>;
}

/**
 * A page's text from its source: its text layer as it is; OCR of the page; or the layer and the
 * OCR of its image regions (each cropped with a white margin, read, placed back), merged.
 */
export async function readPage(
  engine: { ocr(img: RgbImage): Promise<OcrPage> },
  p: SourcedPage,
): Promise<OcrPage> {
  if (p.decision.source === 'text') return textLayerPage(p.layer!);
  const img = await p.image();
  if (p.decision.source === 'ocr') return engine.ocr(img);
  const lines: OcrLine[] = [];
  for (const region of p.decision.regions) {
    const { image, dx, dy } = cropRegion(img, region);
    const read = await engine.ocr(image);
    for (const l of read.lines)
      lines.push({
        ...l,
        box: shift(l.box, dx, dy),
        quad: l.quad.map(([qx, qy]) => [qx + dx, qy + dy]) as OcrLine['quad'],
        words: l.words.map((w) => ({ ...w, box: shift(w.box, dx, dy) })),
      });
  }
  return mergeOcr(textLayerPage(p.layer!), lines);
}

/**
 * A region of an image with a white margin around it (a detector expects text away from the
 * border), and the offset that takes its pixels back to the image's.
 */
export function cropRegion(img: RgbImage, [rx, ry, rw, rh]: Box, margin = 16) {
  const x0 = Math.max(0, Math.floor(rx));
  const y0 = Math.max(0, Math.floor(ry));
  const w = Math.max(1, Math.min(img.width - x0, Math.round(rw)));
  const h = Math.max(1, Math.min(img.height - y0, Math.round(rh)));
  const W = w + 2 * margin;
  const H = h + 2 * margin;
  const out = new Uint8Array(W * H * 3).fill(255);
  for (let y = 0; y < h; y++)
    out.set(
      img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3),
      ((y + margin) * W + margin) * 3,
    );
  return { image: { data: out, width: W, height: H }, dx: x0 - margin, dy: y0 - margin };
}

const shift = (b: Box, dx: number, dy: number): Box => [b[0] + dx, b[1] + dy, b[2], b[3]];
