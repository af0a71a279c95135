import type { Provider } from '@marie/gpu';
import type { InferenceSession } from 'onnxruntime-node';
import { directions } from './classify.js';
import { type DetectOptions, detect } from './detect.js';
import type { Quad } from './geometry.js';
import { cropQuad, type RgbImage } from './image.js';
import type { ModelPool } from './pool.js';
import { RecognitionQueue, type RecognitionStats, type Recognized } from './recognize.js';

/** A page's text boxes and their upright crops (48 rows high). */
export interface Detected {
  found: { quad: Quad; score: number }[];
  crops: RgbImage[];
}

/**
 * The three PP-OCRv4 models, wherever they run: what the OcrEngine asks of them. `PooledModels`
 * runs them on worker threads (CPU), `LocalModels` on the caller's thread (CUDA).
 */
export interface Models {
  readonly provider: Provider;
  /** Worker threads that run the models (0: the caller's thread). */
  readonly workers: number;
  /** Recognition so far: rounds, model runs, crops. */
  readonly stats: Readonly<RecognitionStats>;
  detect(img: RgbImage, options: DetectOptions): Promise<Detected>;
  recognize(crops: RgbImage[]): Promise<Recognized[]>;
  /** The direction classifier's [p(0), p(180)] per crop, flat. */
  directions(crops: RgbImage[]): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * The models on worker threads (a ModelPool, one per core by default): a page's detection on one
 * worker, its line crops sorted by width and cut into runs of about equal total width, two per
 * worker, so that the lines are read in parallel (a run's crops batched by width when batchSize
 * is above 1).
 */
export class PooledModels implements Models {
  readonly #pool: ModelPool;
  readonly #batchSize: number;
  readonly #stats: RecognitionStats = { rounds: 0, runs: 0, crops: 0 };

  constructor(pool: ModelPool, batchSize: number) {
    this.#pool = pool;
    this.#batchSize = batchSize;
  }

  get provider(): Provider {
    return this.#pool.provider;
  }

  get workers(): number {
    return this.#pool.size;
  }

  get stats(): Readonly<RecognitionStats> {
    return this.#stats;
  }

  detect(img: RgbImage, options: DetectOptions): Promise<Detected> {
    return this.#pool.run({ op: 'detect', image: own(img), options });
  }

  async recognize(crops: RgbImage[]): Promise<Recognized[]> {
    if (!crops.length) return [];
    this.#stats.rounds++;
    this.#stats.crops += crops.length;
    const out: Recognized[] = new Array(crops.length);
    await Promise.all(
      chunks(crops, this.#pool.size * 2).map(async (indices) => {
        const part = indices.map((i) => crops[i]!);
        const { results, runs } = await this.#pool.run<{ results: Recognized[]; runs: number }>(
          { op: 'recognize', crops: part, batchSize: this.#batchSize },
          part.map((c) => c.data.buffer as ArrayBuffer),
        );
        this.#stats.runs += runs;
        indices.forEach((i, k) => {
          out[i] = results[k]!;
        });
      }),
    );
    return out;
  }

  directions(crops: RgbImage[]): Promise<Float32Array> {
    return this.#pool.run<Float32Array>({ op: 'directions', crops });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/**
 * The models on the caller's thread (CUDA keeps them there): recognition goes through one
 * RecognitionQueue, so the line crops of every page in flight share batches.
 */
export class LocalModels implements Models {
  readonly provider: Provider;
  readonly workers = 0;
  readonly #ort: typeof import('onnxruntime-node');
  readonly #sessions: { det: InferenceSession; rec: InferenceSession; cls: InferenceSession };
  readonly #recognition: RecognitionQueue;

  constructor(
    ort: typeof import('onnxruntime-node'),
    sessions: { det: InferenceSession; rec: InferenceSession; cls: InferenceSession },
    provider: Provider,
    keys: readonly string[],
    batchSize: number,
  ) {
    this.#ort = ort;
    this.#sessions = sessions;
    this.provider = provider;
    this.#recognition = new RecognitionQueue(ort, sessions.rec, keys, { batchSize });
  }

  get stats(): Readonly<RecognitionStats> {
    return this.#recognition.stats;
  }

  async detect(img: RgbImage, options: DetectOptions): Promise<Detected> {
    const found = await detect(this.#ort, this.#sessions.det, img, options);
    return { found, crops: found.map(({ quad }) => cropQuad(img, quad, 48)) };
  }

  recognize(crops: RgbImage[]): Promise<Recognized[]> {
    return this.#recognition.recognize(crops);
  }

  directions(crops: RgbImage[]): Promise<Float32Array> {
    return directions(this.#ort, this.#sessions.cls, crops);
  }

  async close(): Promise<void> {
    const { det, rec, cls } = this.#sessions;
    await Promise.all([det.release(), rec.release(), cls.release()]);
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
