// The accuracy targets on clean pages of the accuracy set (test/accuracy-set.ts): one page of
// each layout (a single column in two fonts, two columns, a ruled table), CER <= 2% (reading
// order counts) and order-free word F1 >= 0.97. bench/ocr scores all 24 pages, degraded ones and
// tesseract's too.
import { beforeAll, describe, expect, it } from 'vitest';
import { accuracySet, type TestPage } from '../test/accuracy-set.js';
import { OcrEngine } from './engine.js';
import { characterErrorRate, wordF1 } from './scoring.js';

const CHOSEN = [
  '00-single-DejaVuSans-150',
  '01-two-column-DejaVuSerif-150',
  '03-table-LiberationSerif-150',
  '06-single-LiberationSans-150',
];
let pages: TestPage[];
let engine: OcrEngine;

beforeAll(async () => {
  [pages, engine] = await Promise.all([
    accuracySet((name) => CHOSEN.includes(name)),
    OcrEngine.create(),
  ]);
}, 60_000);

describe('accuracy on the clean pages of the accuracy set', () => {
  it('CER <= 2% and word F1 >= 0.97, columns and table rows read in order', async () => {
    expect(pages.map((p) => p.name)).toEqual(CHOSEN);
    const scores: { name: string; cer: number; f1: number }[] = [];
    for (const p of pages) {
      const page = await engine.ocr(p.image);
      const text = page.lines.map((l) => l.text).join('\n');
      scores.push({
        name: p.name,
        cer: characterErrorRate(p.text, text),
        f1: wordF1(p.text, text),
      });
    }
    console.log(
      scores
        .map((s) => `${s.name}: CER ${(s.cer * 100).toFixed(2)}%, F1 ${s.f1.toFixed(3)}`)
        .join('\n'),
    );
    const mean = (k: 'cer' | 'f1') => scores.reduce((a, s) => a + s[k], 0) / scores.length;
    expect(mean('cer')).toBeLessThanOrEqual(0.02);
    expect(mean('f1')).toBeGreaterThanOrEqual(0.97);
    // No page far off: a column read across, or a table read down, costs tens of percent.
    for (const s of scores) expect(s.cer, s.name).toBeLessThan(0.05);
  }, 120_000);
});
