import type { InferenceSession } from 'onnxruntime-node';
import type { RgbImage } from './image.js';
import { resize, writeChw } from './image.js';

/** One decoded character and where it sits along its crop (0 = left edge, 1 = right edge). */
export interface DecodedChar {
  char: string;
  prob: number;
  /** Center, as a fraction of the crop's width. */
  x: number;
  /**
   * The highest probability of the space class over the steps since the previous character: a
   * word gap the model saw but did not emit (PP-OCRv4 drops many spaces).
   */
  spaceBefore: number;
}

export interface Recognized {
  text: string;
  confidence: number;
  chars: DecodedChar[];
  /** Width of one CTC timestep, as a fraction of the crop's width. */
  step: number;
}

const HEIGHT = 48;
const HALF = [0.5, 0.5, 0.5] as const;

/**
 * CTC recognition of line crops, batched: crops sorted by aspect ratio (width buckets) so that
 * each batch pads little, `batchSize` at a time. Returns one result per crop, in input order.
 */
export async function recognize(
  ort: typeof import('onnxruntime-node'),
  session: InferenceSession,
  dictionary: readonly string[],
  crops: readonly RgbImage[],
  options: { batchSize?: number; maxWidth?: number; stats?: RecognitionStats } = {},
): Promise<Recognized[]> {
  const batchSize = options.batchSize ?? 8;
  const maxWidth = options.maxWidth ?? 3200;
  const order = crops
    .map((c, i) => ({ i, ratio: c.width / c.height }))
    .sort((a, b) => a.ratio - b.ratio);
  const out: Recognized[] = new Array(crops.length);
  for (let b = 0; b < order.length; ) {
    // A width bucket: up to batchSize crops whose widths stay within 1.5x of the narrowest, so
    // that padding stays small (padding changes what the model reads: it drops spaces).
    let e = b + 1;
    while (e < order.length && e - b < batchSize && order[e]!.ratio <= order[b]!.ratio * 1.5) e++;
    const batch = order.slice(b, e);
    b = e;
    const widths = batch.map(({ i }) =>
      Math.min(maxWidth, Math.max(8, Math.ceil((crops[i]!.width / crops[i]!.height) * HEIGHT))),
    );
    const tensorW = Math.ceil(Math.max(...widths) / 8) * 8;
    // Padding is white paper ((255 / 255 - 0.5) / 0.5 = 1), not gray.
    const input = new Float32Array(batch.length * 3 * HEIGHT * tensorW).fill(1);
    batch.forEach(({ i }, k) => {
      const img = resize(crops[i]!, widths[k]!, HEIGHT);
      writeChw(img, input, k * 3 * HEIGHT * tensorW, tensorW, HALF, HALF);
    });
    const res = await session.run({
      [session.inputNames[0]!]: new ort.Tensor('float32', input, [
        batch.length,
        3,
        HEIGHT,
        tensorW,
      ]),
    });
    if (options.stats) {
      options.stats.runs++;
      options.stats.crops += batch.length;
    }
    const t = res[session.outputNames[0]!]!;
    const [, steps, classes] = t.dims as [number, number, number];
    const probs = t.data as Float32Array;
    batch.forEach(({ i }, k) => {
      out[i] = decode(probs, k * steps * classes, steps, classes, dictionary, tensorW / widths[k]!);
    });
  }
  return out;
}

/** What a RecognitionQueue has done: rounds (one per drain), model runs and crops read. */
export interface RecognitionStats {
  rounds: number;
  runs: number;
  crops: number;
}

/**
 * Recognition shared by every page in flight on one engine (Ray Serve's and BentoML's dynamic
 * batching): crops that arrive in the same tick, or while a round runs, go into the next round,
 * where the crops of all those pages are sorted and bucketed by width together. A page waits at
 * most one round longer than it would alone; with `batchSize` 1 every crop is its own run.
 */
export class RecognitionQueue {
  readonly stats: RecognitionStats = { rounds: 0, runs: 0, crops: 0 };
  #waiting: {
    crops: readonly RgbImage[];
    resolve: (r: Recognized[]) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #draining = false;

  constructor(
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly session: InferenceSession,
    private readonly dictionary: readonly string[],
    private readonly options: { batchSize?: number; maxWidth?: number } = {},
  ) {}

  /** The crops' results, in their order, once the round that takes them has run. */
  recognize(crops: readonly RgbImage[]): Promise<Recognized[]> {
    if (crops.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ crops, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length) {
      const round = this.#waiting.splice(0);
      this.stats.rounds++;
      try {
        const all = round.flatMap((r) => r.crops);
        const results = await recognize(this.ort, this.session, this.dictionary, all, {
          ...this.options,
          stats: this.stats,
        });
        let at = 0;
        for (const r of round) {
          r.resolve(results.slice(at, at + r.crops.length));
          at += r.crops.length;
        }
      } catch (err) {
        for (const r of round) r.reject(err);
      }
    }
    this.#draining = false;
  }
}

/** Greedy CTC decoding: argmax per step, repeats collapsed, blanks (index 0) dropped. */
export function decode(
  probs: Float32Array,
  offset: number,
  steps: number,
  classes: number,
  dictionary: readonly string[],
  widthScale: number,
): Recognized {
  const chars: DecodedChar[] = [];
  const space = classes - 1; // the last class: the space PaddleOCR appends to the dictionary
  let prev = 0;
  let spaceSeen = 0;
  for (let s = 0; s < steps; s++) {
    let best = 0;
    let bestP = -1;
    const base = offset + s * classes;
    for (let c = 0; c < classes; c++) {
      const p = probs[base + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== prev || best === 0) spaceSeen = Math.max(spaceSeen, probs[base + space]!);
    if (best !== 0 && best !== prev) {
      // The dictionary is PaddleOCR's Chinese one: its full-width punctuation (，：；（）) is
      // what a Latin page means by , : ; ( ), which NFKC gives back.
      const char = best - 1 < dictionary.length ? dictionary[best - 1]!.normalize('NFKC') : ' ';
      chars.push({
        char,
        prob: bestP,
        x: ((s + 0.5) / steps) * widthScale,
        spaceBefore: spaceSeen,
      });
      spaceSeen = 0;
    }
    prev = best;
  }
  const text = chars.map((c) => c.char).join('');
  const confidence = chars.length ? chars.reduce((a, c) => a + c.prob, 0) / chars.length : 0;
  return { text, confidence, chars, step: widthScale / steps };
}
