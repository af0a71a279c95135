import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrEngine, type OcrPage } from './engine.js';
import { minAreaRect } from './geometry.js';
import { readingOrder } from './layout.js';
import { decode } from './recognize.js';
import { characterErrorRate as cer, wordF1 } from './scoring.js';

// A letter-width page at 150 dpi (1275 px), rendered from SVG with a real font: a title across the
// page, then two columns of text.
const TITLE = 'Quarterly Report for the Document Platform';
const LEFT = [
  'Invoices were processed in',
  'less than two seconds each',
  'with every page stored.',
];
const RIGHT = ['Tables and forms follow', 'the same pipeline with', 'word boxes for review.'];

async function render(
  skewDeg = 0,
  blur = 0,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const text = (x: number, y: number, s: string, size = 30) =>
    `<text x="${x}" y="${y}" font-family="DejaVu Serif" font-size="${size}">${s}</text>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1275" height="700"><rect width="100%" height="100%" fill="white"/>
    ${text(90, 110, TITLE, 36)}
    ${LEFT.map((l, i) => text(90, 220 + i * 60, l)).join('')}
    ${RIGHT.map((l, i) => text(700, 220 + i * 60, l)).join('')}</svg>`;
  let img = sharp(Buffer.from(svg)).flatten({ background: '#fff' });
  if (skewDeg) img = sharp(await img.png().toBuffer()).rotate(skewDeg, { background: '#fff' });
  if (blur) img = img.blur(blur);
  const { data, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
}

const expected = [TITLE, ...LEFT, ...RIGHT].join('\n');
const textOf = (page: OcrPage) => page.lines.map((l) => l.text).join('\n');

describe('OCR on PP-OCRv4', () => {
  let engine: OcrEngine;
  beforeAll(async () => {
    // On CPU the models run in worker threads, one per core, a thread each.
    engine = await OcrEngine.create({ providers: ['cpu'] });
  });
  afterAll(() => engine.close());

  it('runs the models on a worker per core on CPU, pages in flight read as they read alone', async () => {
    expect(engine.workers).toBe(availableParallelism());
    const pages = [await render(), await render(0.5), await render(0, 0.6)];
    const alone = [];
    for (const p of pages) alone.push(textOf(await engine.ocr(p)));
    const together = (await Promise.all(pages.map((p) => engine.ocr(p)))).map(textOf);
    expect(together).toEqual(alone);
  });

  it('reads a clean page in reading order (title, left column, right column): CER <= 2%, word F1 >= 0.97', async () => {
    const page = await engine.ocr(await render());
    const got = textOf(page);
    const c = cer(expected, got);
    const f1 = wordF1(expected, got);
    console.log(`clean page: CER ${(c * 100).toFixed(2)}%, word F1 ${f1.toFixed(3)}`);
    expect(page.lines.map((l) => l.text)).toHaveLength(7);
    expect(c).toBeLessThanOrEqual(0.02);
    expect(f1).toBeGreaterThanOrEqual(0.97);
    // Columns kept apart: every left-column line comes before every right-column line.
    expect(got.indexOf('with every page stored.')).toBeLessThan(
      got.indexOf('Tables and forms follow'),
    );
  });

  it('gives every word its own box inside its line, and a confidence', async () => {
    const page = await engine.ocr(await render());
    const line = page.lines.find((l) => l.text.startsWith('Invoices'))!;
    expect(line.words.map((w) => w.text)).toEqual(['Invoices', 'were', 'processed', 'in']);
    for (const w of line.words) {
      expect(w.confidence).toBeGreaterThan(0.8);
      expect(w.box[0]).toBeGreaterThanOrEqual(line.box[0] - 2);
      expect(w.box[0] + w.box[2]).toBeLessThanOrEqual(line.box[0] + line.box[2] + 2);
    }
    // Words left to right, not overlapping much.
    for (let i = 1; i < line.words.length; i++)
      expect(line.words[i]!.box[0]).toBeGreaterThan(
        line.words[i - 1]!.box[0] + line.words[i - 1]!.box[2] * 0.8,
      );
  });

  it('batches recognition across pages in flight: fewer model runs, the same text', async () => {
    // The models on this thread (CUDA's default): one queue batches every page in flight.
    const batched = await OcrEngine.create({
      threads: 2,
      workers: 0,
      providers: ['cpu'],
      batchSize: 8,
    });
    expect(batched.workers).toBe(0);
    const pages = [await render(), await render(0.5), await render(0, 0.6)];
    const before = { ...batched.recognitionStats };
    const alone = [];
    for (const p of pages) alone.push(textOf(await batched.ocr(p)));
    const mid = { ...batched.recognitionStats };
    const together = (await Promise.all(pages.map((p) => batched.ocr(p)))).map(textOf);
    const after = batched.recognitionStats;
    const runsAlone = mid.runs - before.runs;
    const runsTogether = after.runs - mid.runs;
    console.log(
      `3 pages: ${runsAlone} runs in ${mid.rounds - before.rounds} rounds one by one, ${runsTogether} runs in ${after.rounds - mid.rounds} rounds in flight together`,
    );
    expect(mid.rounds - before.rounds).toBe(3);
    expect(after.rounds - mid.rounds).toBeLessThan(3);
    expect(runsTogether).toBeLessThan(runsAlone);
    expect(after.crops - mid.crops).toBe(mid.crops - before.crops);
    for (const [i, t] of together.entries()) expect(cer(alone[i]!, t)).toBeLessThanOrEqual(0.01);
    // Batching off: one run per crop, whatever is in flight.
    const single = await OcrEngine.create({ threads: 2, providers: ['cpu'], batchSize: 1 });
    await Promise.all(pages.map((p) => single.ocr(p)));
    expect(single.recognitionStats.runs).toBe(single.recognitionStats.crops);
    await Promise.all([batched.close(), single.close()]);
    await expect(single.ocr(pages[0]!)).rejects.toThrow('the OCR engine is closed');
  });

  it('refuses a workers count that is not a whole number', async () => {
    await expect(OcrEngine.create({ workers: 1.5 })).rejects.toThrow(
      'workers: 1.5 is not a whole number >= 0',
    );
  });

  it('reads a skewed and blurred page too (rotated boxes)', async () => {
    const page = await engine.ocr(await render(2, 0.8));
    const c = cer(expected, textOf(page));
    console.log(`degraded page (2 deg skew, blur 0.8): CER ${(c * 100).toFixed(2)}%`);
    expect(c).toBeLessThan(0.1);
  });
});

describe('pieces', () => {
  it('minAreaRect finds a rotated rectangle', () => {
    const a = (30 * Math.PI) / 180;
    const pts: [number, number][] = [];
    for (let u = 0; u <= 100; u += 5)
      for (let v = 0; v <= 20; v += 5)
        pts.push([100 + u * Math.cos(a) - v * Math.sin(a), 50 + u * Math.sin(a) + v * Math.cos(a)]);
    const r = minAreaRect(pts);
    expect(Math.max(r.width, r.height)).toBeCloseTo(100, 5);
    expect(Math.min(r.width, r.height)).toBeCloseTo(20, 5);
  });

  it('CTC decoding collapses repeats, drops blanks, keeps positions', () => {
    const dict = ['a', 'b'];
    const steps = [1, 1, 0, 1, 2, 0];
    const classes = 4; // blank, a, b, space
    const probs = new Float32Array(steps.length * classes);
    for (const [s, c] of steps.entries()) probs[s * classes + c] = 0.9;
    const r = decode(probs, 0, steps.length, classes, dict, 1);
    expect(r.text).toBe('aab');
    expect(r.chars.map((c) => c.x)).toEqual([0.5 / 6, 3.5 / 6, 4.5 / 6]);
  });

  it('reads two columns apart, and lines of one row left to right', () => {
    const boxes: [number, number, number, number][] = [
      [50, 10, 900, 30], // title across
      [50, 100, 400, 20],
      [550, 100, 400, 20],
      [50, 140, 400, 20],
      [550, 140, 400, 20],
      [50, 180, 380, 20],
    ];
    expect(readingOrder(boxes, 1000)).toEqual([0, 1, 3, 5, 2, 4]);
  });
});
