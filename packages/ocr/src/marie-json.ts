import type { OcrPage } from './engine.js';
import type { Box } from './layout.js';

/** Marie's per-page OCR JSON (marie/document/ocr_processor.py), as TextExtractionExecutor answers it. */
export interface MariePageJson {
  meta: {
    imageSize: { width: number; height: number };
    /** 0-based. */
    page: number;
    lang: string;
    /** Number of lines. */
    lines: number;
    lines_bboxes: number[][];
    format: 'xywh' | 'xyxy';
    /** Where the page's text came from: its PDF text layer, OCR, or both (OCR'd images). */
    source?: 'text' | 'ocr' | 'mixed';
  };
  words: {
    id: number;
    text: string;
    confidence: number;
    box: number[];
    line: number;
    word_index: number;
  }[];
  lines: { line: number; wordids: number[]; text: string; bbox: number[]; confidence: number }[];
}

/**
 * A page in Marie's shape: words sorted by x and grouped by line (lines 1..N in reading order),
 * confidences rounded as Marie's (words 3 places, lines 4), boxes `[x, y, w, h]` or, with
 * `format: 'xyxy'`, `[x0, y0, x1, y1]` (Marie applies it to words only; here to lines too).
 */
export function toMarieJson(
  page: OcrPage,
  pageIndex: number,
  format: 'xywh' | 'xyxy' = 'xywh',
  source?: 'text' | 'ocr' | 'mixed',
): MariePageJson {
  const fmt = (b: Box) => (format === 'xyxy' ? [b[0], b[1], b[0] + b[2], b[1] + b[3]] : [...b]);
  const words: MariePageJson['words'] = [];
  const lines: MariePageJson['lines'] = [];
  let id = 0;
  page.lines.forEach((l, i) => {
    const line = i + 1;
    const ids: number[] = [];
    [...l.words]
      .sort((a, b) => a.box[0] - b.box[0])
      .forEach((w, k) => {
        words.push({
          id,
          text: w.text,
          confidence: round(w.confidence, 3),
          box: fmt(w.box),
          line,
          word_index: k,
        });
        ids.push(id++);
      });
    lines.push({
      line,
      wordids: ids,
      text: l.words.map((w) => w.text).join(' '),
      bbox: fmt(l.box),
      confidence: round(l.confidence, 4),
    });
  });
  return {
    meta: {
      imageSize: { width: page.width, height: page.height },
      page: pageIndex,
      lang: 'en',
      lines: lines.length,
      lines_bboxes: lines.map((l) => l.bbox),
      format,
      ...(source ? { source } : {}),
    },
    words,
    lines,
  };
}

function round(v: number, places: number): number {
  const f = 10 ** places;
  return Math.round(v * f) / f;
}
