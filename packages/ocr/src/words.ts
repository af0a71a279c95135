import type { OcrLine } from './engine.js';
import type { Point, Quad } from './geometry.js';
import type { Box } from './layout.js';
import type { Recognized } from './recognize.js';

/**
 * A line and its words: word boundaries are the model's spaces, or the spaces it dropped, found
 * from the CTC steps (see `DecodedChar.spaceBefore`) and the gaps between character positions.
 */
export function toLine(quad: Quad, r: Recognized): OcrLine {
  const [tl, tr, br, bl] = quad;
  const at = (f: number): [Point, Point] => [
    [tl[0] + f * (tr[0] - tl[0]), tl[1] + f * (tr[1] - tl[1])],
    [bl[0] + f * (br[0] - bl[0]), bl[1] + f * (br[1] - bl[1])],
  ];
  const chars = r.chars;
  const height = Math.hypot(bl[0] - tl[0], bl[1] - tl[1]);
  const width = Math.hypot(tr[0] - tl[0], tr[1] - tl[1]);
  // The unit word gaps are measured in: the em of this line's font as its own characters space
  // out (the median pitch over the expected advances), which blur and the detector's padding do
  // not inflate as they do the box height; the box height when the line is too short to tell.
  const pitches: number[] = [];
  for (let i = 1; i < chars.length; i++) {
    const a = chars[i - 1]!;
    const b = chars[i]!;
    if (a.char !== ' ' && b.char !== ' ')
      pitches.push((b.x - a.x) / ((advance(a.char) + advance(b.char)) / 2));
  }
  pitches.sort((a, b) => a - b);
  const em =
    pitches.length >= 8 ? pitches[Math.floor(pitches.length / 2)]! : height / Math.max(width, 1);
  const words: { chars: typeof chars }[] = [];
  let current: typeof chars = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c.char === ' ') {
      if (current.length) words.push({ chars: current });
      current = [];
      continue;
    }
    const prev = current.at(-1);
    // A word boundary the model did not emit: the distance between two character centers beyond
    // what their widths explain (a space is about 0.3 em), or less of it with space probability
    // in the steps between them.
    const excess = prev ? (c.x - prev.x) / em - (advance(prev.char) + advance(c.char)) / 2 : 0;
    if (prev && excess > gapNeeded(current.at(-2)?.char, prev.char, c.char, c.spaceBefore)) {
      words.push({ chars: current });
      current = [];
    }
    current.push(c);
  }
  if (current.length) words.push({ chars: current });
  const half = r.step / 2;
  const ocrWords = words.map(({ chars: cs }) => {
    const f0 = Math.max(0, cs[0]!.x - half * 1.5);
    const f1 = Math.min(1, cs.at(-1)!.x + half * 1.5);
    const [a, b] = at(f0);
    const [c, d] = at(f1);
    return {
      text: cs.map((ch) => ch.char).join(''),
      confidence: cs.reduce((s, ch) => s + ch.prob, 0) / cs.length,
      box: bboxOf([a, b, c, d]),
    };
  });
  return {
    text: ocrWords.map((w) => w.text).join(' '),
    confidence: r.confidence,
    box: bboxOf(quad),
    quad,
    words: ocrWords,
  };
}

/**
 * The excess gap (in em) that makes a word boundary between `prev` and `next`: 0.45 em, or 0.15
 * with space probability in the CTC steps between them; less where Latin text nearly always has a
 * space ("Date: 14", "Laurent, thank", "note 5531"), but not inside numbers ("12,480", "10:30").
 */
function gapNeeded(before: string | undefined, prev: string, next: string, spaceP: number): number {
  const base = spaceP >= 0.1 ? 0.15 : 0.45;
  const letter = (ch: string | undefined) => ch !== undefined && /\p{L}/u.test(ch);
  // After a word's , : ; (or a sentence's . ! ? before a capital) prose has a space: any gap.
  const afterWordPunct =
    letter(before) && (':;,'.includes(prev) || ('.!?'.includes(prev) && /\p{Lu}/u.test(next)));
  if (afterWordPunct) return Math.min(base, 0.03);
  const wordThenNumber = /\p{Ll}/u.test(prev) && /[0-9]/.test(next);
  return wordThenNumber ? Math.min(base, 0.1) : base;
}

/** Approximate advance widths of Latin glyphs, in em (sans and serif faces alike). */
function advance(ch: string): number {
  if ("iljtfrI!|.,;:'`".includes(ch)) return 0.3;
  if ('mwMW'.includes(ch)) return 0.9;
  if (ch >= 'A' && ch <= 'Z') return 0.68;
  if (ch >= '0' && ch <= '9') return 0.62;
  return 0.58;
}

function bboxOf(pts: readonly Point[]): Box {
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const y0 = Math.min(...ys);
  return [
    Math.round(x0),
    Math.round(y0),
    Math.round(Math.max(...xs) - x0),
    Math.round(Math.max(...ys) - y0),
  ];
}
