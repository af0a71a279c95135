import { type RequestContext, requests } from '@marie/core';
import { type DocList, NdArray, type Static, Type } from '@marie/docs';
import { MarieExecutor, type MarieExecutorArgs } from '@marie/executor';
import { type OcrEngineArgs, type RgbImage, rotate180, withOcrEngine } from '@marie/ocr';
import { PageDoc, pageImages } from '@marie/storage';

/** A page to check: an asset (`asset_key`, `pages`) or an image (`tensor`, uint8 HWC RGB). */
export const OrientationDoc = PageDoc;
export type OrientationDoc = PageDoc;

/** `/document/orientation`'s parameters: checked before the method runs, other keys pass through. */
export const OrientationParameters = Type.Object(
  {
    correct: Type.Optional(
      Type.Boolean({
        description: 'answer the pages turned upright (images tagged with their answer)',
      }),
    ),
  },
  { title: 'OrientationParameters' },
);
export type OrientationParameters = Static<typeof OrientationParameters>;

export interface PageOrientationArgs extends MarieExecutorArgs, OcrEngineArgs {
  /** PDF rendering resolution (100: orientation needs far fewer pixels than reading). */
  dpi?: number;
}

/**
 * Is each page upright or upside down? The text lines are found by PP-OCRv4's detector and voted
 * on by its direction classifier (no recognition: a page costs a fraction of reading it).
 * `/document/orientation` answers `{pages: [{page, rotation, confidence, lines}]}` in
 * `__results__`; with `parameters.correct: true` it answers the pages turned upright instead, as
 * images tagged with the same `{page, rotation, confidence, lines}`. Detection runs on pages
 * scaled to 960 pixels at most: orientation needs no more.
 */
export class PageOrientationExecutor extends withOcrEngine(MarieExecutor, { maxSide: 960 }) {
  readonly #dpi: number;

  constructor({ dpi, ...rest }: PageOrientationArgs = {}) {
    super(rest);
    this.#dpi = dpi ?? 100;
  }

  @requests({
    on: ['/document/orientation', '/default'],
    requestSchema: OrientationDoc,
    parametersSchema: OrientationParameters,
  })
  async orientation(docs: DocList<OrientationDoc>, ctx: RequestContext<OrientationParameters>) {
    const correct = ctx.parameters.correct === true;
    const engine = await this.engine;
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
