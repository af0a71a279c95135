import { hostname } from 'node:os';
import { ErrorCode, MarieError, type RequestContext, requests } from '@marie/core';
import { type DocList, type Static, Type } from '@marie/docs';
import { MarieExecutor, type MarieExecutorArgs } from '@marie/executor';
import {
  chooseSource,
  cropRegion,
  type OcrEngineArgs,
  type OcrPage,
  type PageSource,
  readPage,
  type SourceDecision,
  toMarieJson,
  withOcrEngine,
} from '@marie/ocr';
import {
  PageDoc,
  type PageImage,
  pageImages,
  pdfTextLayer,
  searchablePdf,
  type TextLayerPage,
} from '@marie/storage';

/** What `/document/extract` takes: an AssetKeyDoc (`asset_key`, `pages`) or a MarieDoc image (`tensor`). */
export const ExtractDoc = PageDoc;
export type ExtractDoc = PageDoc;

export const MODES = ['word', 'sparse', 'line', 'raw_line', 'multiline'] as const;
export type Mode = (typeof MODES)[number];

/** A region of a page to read alone (Marie's `payload.regions[]`), in the page's pixels. */
const Region = Type.Object({
  id: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  pageIndex: Type.Number({ minimum: 0, description: 'the page, counted from 0' }),
  x: Type.Number({ minimum: 0 }),
  y: Type.Number({ minimum: 0 }),
  w: Type.Number({ minimum: 1 }),
  h: Type.Number({ minimum: 1 }),
  mode: Type.Optional(Type.String({ description: `${MODES.join(' | ')}; another: sparse` })),
});

/** The payload's options; Marie lets each sit in `payload.args` as well. */
const PayloadOptions = {
  regions: Type.Optional(Type.Array(Region)),
  format: Type.Optional(
    Type.Union([Type.Literal('xywh'), Type.Literal('xyxy')], {
      description: 'boxes as [x, y, w, h] (default) or [x0, y0, x1, y1]',
    }),
  ),
  mode: Type.Optional(
    Type.String({ description: `${MODES.join(' | ')} (Marie's fallback for another: sparse)` }),
  ),
  return_ocr: Type.Optional(Type.Boolean({ description: 'answer the per-page OCR JSON too' })),
  source: Type.Optional(
    Type.Union([Type.Literal('auto'), Type.Literal('text'), Type.Literal('ocr')], {
      description:
        "where a PDF page's text comes from: auto (default: its text layer where usable, OCR where not, both where images cover part of it), text, ocr",
    }),
  ),
  password: Type.Optional(Type.String({ description: "an encrypted PDF's password" })),
  searchable: Type.Optional(
    Type.Boolean({
      description:
        "also store a searchable PDF (the asset with an invisible text layer on the OCR'd words) beside the OCR JSON",
    }),
  ),
};

/**
 * `/document/extract`'s parameters, as Marie's scheduler sends them (marie-internals section 6):
 * checked before the method runs, each error naming the field; other keys pass through.
 */
export const ExtractParameters = Type.Object(
  {
    job_id: Type.String({ minLength: 1 }),
    ref_id: Type.String({ minLength: 1 }),
    ref_type: Type.Optional(Type.String({ description: "default 'not_defined'" })),
    queue_id: Type.Optional(Type.String()),
    payload: Type.Object({
      ...PayloadOptions,
      args: Type.Optional(Type.Object(PayloadOptions)),
    }),
  },
  { title: 'ExtractParameters' },
);
export type ExtractParameters = Static<typeof ExtractParameters>;

export interface TextExtractionArgs extends MarieExecutorArgs, OcrEngineArgs {
  /** PDF rendering resolution (200). */
  dpi?: number;
  /**
   * Where the OCR JSON goes: a `file://` folder or an `s3://bucket/prefix`, one object per job
   * (`<results>/<ref_id>/<job_id>.json`). Default: `file://<workspace>/results`.
   */
  results?: string;
}

/**
 * Marie's TextExtractionExecutor (marie/executor/text/text_extraction_executor.py) on PP-OCRv4:
 * `/document/extract` with Marie's parameters (`job_id`, `ref_id`, `ref_type`, `payload` with
 * `regions`, `format`, `mode`, `return_ocr`, also under `payload.args`), answering
 * `{status, runtime_info, metadata}` in `__results__`; `/document/extract/status`.
 */
export class TextExtractionExecutor extends withOcrEngine(MarieExecutor) {
  readonly #dpi: number;
  readonly #results: string | undefined;

  constructor({ dpi, results, ...rest }: TextExtractionArgs = {}) {
    super(rest);
    this.#dpi = dpi ?? 200;
    if (results !== undefined && !/^(file|s3):\/\/./.test(String(results)))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `with.results: "${results}" is not a file:// or s3:// location`,
        { field: 'with.results' },
      );
    this.#results = results;
  }

  @requests({ on: '/document/extract/status' })
  async extractStatus() {
    const engine = await this.engine;
    return { index: 'complete', use_cuda: engine.provider === 'cuda' };
  }

  @requests({ on: ['/document/extract/validate', '/default'] })
  validate() {
    return { valid: true };
  }

  // Concurrent requests run together, so that their pages share recognition batches.
  @requests({
    on: '/document/extract',
    requestSchema: ExtractDoc,
    parametersSchema: ExtractParameters,
    allowConcurrent: true,
  })
  async extract(docs: DocList<ExtractDoc>, ctx: RequestContext<ExtractParameters>) {
    const { job_id: jobId, ref_id: refId, payload } = ctx.parameters;
    const refType = ctx.parameters.ref_type || 'not_defined';
    const args = { ...payload.args, ...payload };
    const format = args.format ?? 'xywh';
    const mode = modeOf(args.mode, 'sparse');
    const regions = args.regions ?? [];
    const engine = await this.engine;
    const started = performance.now();
    const runtime_info = {
      name: this.constructor.name,
      instance_name: this.runtimeArgs.name,
      model: 'PP-OCRv4 (onnx)',
      host: hostname(),
      workspace: this.workspace,
      use_cuda: engine.provider === 'cuda',
    };
    if (regions.length) {
      const images = await this.#pages(docs);
      const out = [];
      for (const [i, r] of regions.entries()) {
        const img = images[r.pageIndex];
        if (!img)
          throw new MarieError(
            ErrorCode.InvalidArgument,
            `parameters.payload.regions: pageIndex ${r.pageIndex} is out of range (${images.length} pages)`,
          );
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const read = await readRegion(engine, img, [r.x, r.y, r.w, r.h], modeOf(r.mode, mode));
        out.push({ id: r.id ?? i, text: read.text, confidence: round(read.confidence, 4) });
      }
      return {
        status: 'succeeded',
        runtime_info,
        metadata: { ref_id: refId, ref_type: refType, job_id: jobId, regions: out, extended: [] },
      };
    }
    const pages: ReturnType<typeof toMarieJson>[] = [];
    const read: OcrPage[] = [];
    if (args.searchable === true && (docs.length !== 1 || !docs[0]!.asset_key))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        'parameters.payload.searchable: one document with an asset_key (the file to write over)',
        { field: 'parameters.payload.searchable' },
      );
    const units = await this.#units(docs, args.source ?? 'auto', args.password);
    // One asset: its own page numbers (pages [3] is page 3); otherwise pages count from 0.
    const single = docs.length === 1 && docs[0]!.asset_key !== undefined;
    // Pages in flight together: one more than there are model workers keeps each of them busy;
    // on one thread (CUDA) several, so that their lines share recognition batches.
    let next = 0;
    const inFlight = engine.workers ? engine.workers + 1 : 4;
    await Promise.all(
      Array.from({ length: Math.min(inFlight, units.length) }, async () => {
        while (next < units.length) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const i = next++;
          const u = units[i]!;
          const page = await readPage(engine, u);
          read[i] = page;
          const json = toMarieJson(page, single ? u.page : i, format, u.decision.source);
          pages[i] = { ...json, text: applyMode(page, mode) } as typeof json;
        }
      }),
    );
    const sources: Record<PageSource, number> = { text: 0, ocr: 0, mixed: 0 };
    for (const u of units) sources[u.decision.source]++;
    const metadata: Record<string, unknown> = {
      ref_id: refId,
      ref_type: refType,
      job_id: jobId,
      pages: String(pages.length),
      sources,
      mode,
      format,
      time_ms: Math.round(performance.now() - started),
    };
    if (args.return_ocr === true) metadata.ocr = pages;
    if (this.storageEnabled) metadata.assets = await this.#persist(jobId, refId, refType, pages);
    if (args.searchable === true)
      metadata.searchable = await this.#searchable(
        docs[0]!.asset_key!,
        units,
        read,
        jobId,
        refId,
        args.password,
      );
    return { status: 'succeeded', runtime_info, metadata };
  }

  #pages(docs: DocList<ExtractDoc>): Promise<PageImage[]> {
    return pageImages(docs, { dpi: this.#dpi, storage: this.storage.objects });
  }

  /**
   * The pages of a request, each with where its text comes from: a PDF's pages with their text
   * layers (read first, no rendering), rendered only where OCR is needed; images as they are.
   */
  async #units(
    docs: DocList<ExtractDoc>,
    choice: 'auto' | 'text' | 'ocr',
    password: string | undefined,
  ): Promise<Unit[]> {
    const units: Unit[] = [];
    const storage = this.storage.objects;
    const dpi = this.#dpi;
    const pw = password !== undefined ? { password } : {};
    for (const d of docs) {
      const layers =
        d.asset_key && choice !== 'ocr'
          ? await pdfTextLayer(d.asset_key, {
              pages: d.pages ?? [],
              dpi,
              storage,
              ...pw,
            })
          : undefined;
      if (!layers) {
        // An image (or OCR asked for): every page rendered and OCR'd.
        for (const img of await pageImages([d], {
          dpi,
          storage,
          ...pw,
        }))
          units.push({
            page: img.page,
            decision: chooseSource(undefined, 'ocr'),
            image: async () => img,
          });
        continue;
      }
      const decided = layers.map((layer) => ({ layer, decision: chooseSource(layer, choice) }));
      const ocr = decided.filter((x) => x.decision.source !== 'text').map((x) => x.layer.page);
      // The pages to OCR rendered together (one open of the PDF), only those.
      const rendered = ocr.length
        ? new Map(
            (
              await pageImages([{ asset_key: d.asset_key!, pages: ocr }], {
                dpi,
                storage,
                ...pw,
              })
            ).map((img) => [img.page, img]),
          )
        : new Map<number, PageImage>();
      for (const { layer, decision } of decided)
        units.push({
          page: layer.page,
          decision,
          layer,
          image: async () => rendered.get(layer.page)!,
        });
    }
    return units;
  }

  /**
   * The searchable PDF of the request's asset: its OCR'd words as an invisible layer (pages read
   * from their text layer have theirs), stored beside the OCR JSON; with asset tracking, the
   * `ocr/searchable-pdf` asset. Answers its location.
   */
  async #searchable(
    asset: string,
    units: Unit[],
    read: OcrPage[],
    jobId: string,
    refId: string,
    password: string | undefined,
  ): Promise<string> {
    const layer = units.flatMap((u, i) =>
      u.decision.source === 'text'
        ? []
        : [
            {
              page: u.page,
              dpi: this.#dpi,
              words: read[i]!.lines.flatMap((l) => l.words).filter(
                (w) => u.decision.source === 'ocr' || w.confidence < 1,
              ),
            },
          ],
    );
    const pdf = await searchablePdf(await this.storage.objects.read(asset), layer, {
      name: asset,
      ...(password !== undefined ? { password } : {}),
    });
    const uri = this.#resultUri(refId, jobId, 'pdf');
    await this.storage.objects.write(uri, Buffer.from(pdf));
    if (this.storageEnabled && this.assetTrackingEnabled)
      await this.recordMaterializations(
        [
          {
            key: 'ocr/searchable-pdf',
            kind: 'pdf',
            payload: { pages: layer.map((p) => p.page) },
            uri,
            metadata: { bytes: pdf.length, ocr_pages: layer.length },
          },
        ],
        { jobId },
      );
    return uri;
  }

  /** Where a job's result file goes: `<results>/<ref>/<job>.<ext>` (names made path-safe). */
  #resultUri(refId: string, jobId: string, ext: string): string {
    const safe = (v: string) => v.replace(/[^\w.-]/g, '_');
    const base = this.#results ?? `file://${this.workspace}/results`;
    return `${base.replace(/\/+$/, '')}/${safe(refId)}/${safe(jobId)}.${ext}`;
  }

  /** StorageDoc rows and the ocr/* assets, with the OCR JSON in the object store beside the work dir. */
  async #persist(
    jobId: string,
    refId: string,
    refType: string,
    pages: ReturnType<typeof toMarieJson>[],
  ) {
    const text = pages.map((p) => p.lines.map((l) => l.text).join('\n')).join('\n\n');
    const words = pages.flatMap((p) => p.words);
    const uri = this.#resultUri(refId, jobId, 'json');
    await this.storage.objects.write(uri, JSON.stringify(pages));
    await this.store(refId, refType, 'content', [
      {
        id: `${refId}-ocr`,
        content: { pages: pages.length, text },
        tags: { action: 'extract', type: 'metadata', ttl: 2880, checksum: refId },
      },
    ]);
    if (!this.assetTrackingEnabled) return [uri];
    await this.recordMaterializations(
      [
        {
          key: 'ocr/text',
          kind: 'text',
          payload: text,
          uri,
          metadata: {
            char_count: text.length,
            line_count: pages.reduce((a, p) => a + p.lines.length, 0),
            page_count: pages.length,
          },
        },
        {
          key: 'ocr/bboxes',
          kind: 'bbox',
          payload: { boxes: words.map((w) => w.box) },
          uri,
          metadata: { bbox_count: words.length },
        },
        {
          key: 'ocr/confidence',
          kind: 'metadata',
          payload: { confidence: words.map((w) => w.confidence) },
          uri,
          metadata: {
            avg_confidence: round(mean(words.map((w) => w.confidence)), 4),
            confidence_count: words.length,
          },
        },
      ],
      { jobId },
    );
    return [uri];
  }
}

/** A page of a request and where its text comes from. */
interface Unit {
  page: number;
  decision: SourceDecision;
  layer?: TextLayerPage;
  image: () => Promise<PageImage>;
}

/**
 * A region by Marie's mode: `word`, `line` and `raw_line` recognise it as one line (no detection):
 * `word` as one word (no spaces), `line` as its words with single spaces, `raw_line` as the model
 * decoded it; `sparse` and `multiline` detect the lines inside it: `sparse` one per line of the
 * answer, `multiline` as one paragraph (lines joined by a space).
 */
async function readRegion(
  engine: Awaited<TextExtractionExecutor['engine']>,
  img: PageImage,
  box: [number, number, number, number],
  mode: Mode,
): Promise<{ text: string; confidence: number }> {
  if (mode === 'word' || mode === 'line' || mode === 'raw_line') {
    const { line, raw } = await engine.readLine(cropRegion(img, box, 4).image);
    const words = line.words.map((w) => w.text);
    const text = mode === 'raw_line' ? raw : words.join(mode === 'word' ? '' : ' ');
    return { text, confidence: line.confidence };
  }
  const page = await engine.ocr(cropRegion(img, box).image);
  const words = page.lines.flatMap((l) => l.words);
  return {
    text: page.lines.map((l) => l.text).join(mode === 'multiline' ? ' ' : '\n'),
    confidence: mean(words.map((w) => w.confidence)),
  };
}

/** A region's own mode, when it names one of Marie's; the request's otherwise. */
function modeOf(mode: string | undefined, fallback: Mode): Mode {
  return (MODES as readonly unknown[]).includes(mode) ? (mode as Mode) : fallback;
}

/** The text of a page by mode: words (space-joined), lines (one per line), or Marie's sparse/raw forms. */
function applyMode(page: OcrPage, mode: Mode): string {
  switch (mode) {
    case 'word':
      return page.lines.flatMap((l) => l.words.map((w) => w.text)).join(' ');
    case 'line':
    case 'raw_line':
      return page.lines.map((l) => l.text).join('\n');
    case 'multiline':
      return page.lines.map((l) => l.text).join(' ');
    default:
      return page.lines.map((l) => l.text).join('\n');
  }
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const round = (v: number, p: number) => Math.round(v * 10 ** p) / 10 ** p;
