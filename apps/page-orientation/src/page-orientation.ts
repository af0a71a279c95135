import { ErrorCode, MarieError, type RequestContext, requests } from '@marie/core';
import { type DocList, NdArray } from '@marie/docs';
import { MarieExecutor, type MarieExecutorArgs } from '@marie/executor';
import { OcrEngine, type OcrEngineOptions, type RgbImage, rotate180 } from '@marie/ocr';
import { PageDoc, pageImages } from '@marie/storage';

/** A page to check: an asset (`asset_key`, `pages`) or an image (`tensor`, uint8 HWC RGB). */
export const OrientationDoc = PageDoc;
export type OrientationDoc = PageDoc;

export interface PageOrientationArgs extends MarieExecutorArgs {
  /** ONNX Runtime threads per operator (per model worker: 1 by default). */
  threads?: number;
  /** Model worker threads (default: one per core on CPU, 0 on CUDA). */
  workers?: number;
  /** Execution providers by preference (`['cuda', 'cpu']`). */
  providers?: OcrEngineOptions['providers'];
  /** PDF rendering resolution (100: orientation needs far fewer pixels than reading). */
  dpi?: number;
}

/**
 * Is each page upright or upside down? The text lines are found by PP-OCRv4's detector and voted
 * on by its direction classifier (no recognition: a page costs a fraction of reading it).
 * `/document/orientation` answers `{pages: [{page, rotation, confidence, lines}]}` in
 * `__results__`; with `parameters.correct: true` it answers the pages turned upright instead, as
 * images tagged with the same `{page, rotation, confidence, lines}`.
 */
export class PageOrientationExecutor extends MarieExecutor {
  readonly #engine: Promise<OcrEngine>;
  readonly #dpi: number;

  constructor({ threads, workers, providers, dpi, ...rest }: PageOrientationArgs = {}) {
    super(rest);
    this.#dpi = dpi ?? 100;
    if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `with.workers: ${JSON.stringify(workers)} is not a whole number >= 0`,
        { field: 'with.workers' },
      );
    this.#engine = OcrEngine.create({
      ...(threads ? { threads } : {}),
      ...(workers !== undefined ? { workers } : {}),
      ...(providers ? { providers } : {}),
      maxSide: 960,
    });
    this.#engine.catch(() => {}); // surfaced by open() and by the first request
  }

  override async open(): Promise<void> {
    await super.open();
    await this.#engine;
  }

  override async close(): Promise<void> {
    await super.close();
    await (await this.#engine.catch(() => undefined))?.close();
  }

  @requests({ on: ['/document/orientation', '/default'], requestSchema: OrientationDoc })
  async orientation(docs: DocList<OrientationDoc>, ctx: RequestContext) {
    const correct = ctx.parameters.correct === true;
    if (ctx.parameters.correct !== undefined && typeof ctx.parameters.correct !== 'boolean')
      throw new MarieError(
        ErrorCode.InvalidArgument,
        'parameters.correct: expected true or false',
        {
          field: 'parameters.correct',
        },
      );
    const engine = await this.#engine;
    const pages = await this.#pages(docs);
    const answers = [];
    const upright: object[] = [];
    for (const { image, page } of pages) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const o = await engine.orientation(image);
      answers.push({
        page,
        rotation: o.rotation,
        confidence: Math.round(o.confidence * 1000) / 1000,
        lines: o.lines,
      });
      if (correct) {
        const fixed = o.rotation === 180 ? rotate180(image) : image;
        upright.push({
          tensor: new NdArray(fixed.data, [fixed.height, fixed.width, 3], 'uint8'),
          tags: answers.at(-1)!,
        });
      }
    }
    // An executor answers documents or results: the upright pages carry their answer as tags.
    return correct ? upright : { pages: answers };
  }

  async #pages(docs: DocList<OrientationDoc>): Promise<{ image: RgbImage; page: number }[]> {
    const pages = await pageImages(docs, { dpi: this.#dpi, storage: this.storage.objects });
    return pages.map(({ page, ...image }) => ({ image, page }));
  }
}
