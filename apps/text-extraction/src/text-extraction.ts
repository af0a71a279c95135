import { hostname } from 'node:os';
import { ErrorCode, MarieError, type RequestContext, requests } from '@marie/core';
import type { DocList } from '@marie/docs';
import { MarieExecutor, type MarieExecutorArgs } from '@marie/executor';
import { OcrEngine, type OcrEngineOptions, type OcrPage, toMarieJson } from '@marie/ocr';
import { PageDoc, type PageImage, pageImages } from '@marie/storage';

/** What `/document/extract` takes: an AssetKeyDoc (`asset_key`, `pages`) or a MarieDoc image (`tensor`). */
export const ExtractDoc = PageDoc;
export type ExtractDoc = PageDoc;

export const MODES = ['word', 'sparse', 'line', 'raw_line', 'multiline'] as const;
export type Mode = (typeof MODES)[number];

interface Region {
  id: string | number;
  pageIndex: number;
  x: number;
  y: number;
  w: number;
  h: number;
  mode?: Mode;
}

export interface TextExtractionArgs extends MarieExecutorArgs {
  /** ONNX Runtime threads per operator (per model worker: 1 by default). */
  threads?: number;
  /**
   * Model worker threads (default: one per core on CPU, 0 on CUDA): a document's pages and each
   * page's lines are read on them in parallel, off the executor's event loop.
   */
  workers?: number;
  /** Execution providers by preference (`['cuda', 'cpu']`). */
  providers?: OcrEngineOptions['providers'];
  /** PDF rendering resolution (200). */
  dpi?: number;
  /**
   * Line crops per recognition batch (8 on CUDA, 1 on CPU): crops of every page in flight,
   * concurrent requests included, are batched together; 1 turns batching off.
   */
  batch_size?: number;
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
export class TextExtractionExecutor extends MarieExecutor {
  readonly #engine: Promise<OcrEngine>;
  readonly #dpi: number;

  readonly #results: string | undefined;

  constructor({
    threads,
    workers,
    providers,
    dpi,
    results,
    batch_size,
    ...rest
  }: TextExtractionArgs = {}) {
    super(rest);
    this.#dpi = dpi ?? 200;
    wholeNumber('with.batch_size', batch_size, 1);
    wholeNumber('with.workers', workers, 0);
    wholeNumber('with.threads', threads, 1);
    if (results !== undefined && !/^(file|s3):\/\/./.test(String(results)))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `with.results: "${results}" is not a file:// or s3:// location`,
        { field: 'with.results' },
      );
    this.#results = results;
    this.#engine = OcrEngine.create({
      ...(threads ? { threads } : {}),
      ...(workers !== undefined ? { workers } : {}),
      ...(providers ? { providers } : {}),
      ...(batch_size ? { batchSize: batch_size } : {}),
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

  @requests({ on: '/document/extract/status' })
  async extractStatus() {
    const engine = await this.#engine;
    return { index: 'complete', use_cuda: engine.provider === 'cuda' };
  }

  @requests({ on: ['/document/extract/validate', '/default'] })
  validate() {
    return { valid: true };
  }

  // Concurrent requests run together, so that their pages share recognition batches.
  @requests({ on: '/document/extract', requestSchema: ExtractDoc, allowConcurrent: true })
  async extract(docs: DocList<ExtractDoc>, ctx: RequestContext) {
    const p = ctx.parameters;
    const jobId = required(p, 'job_id');
    const refId = required(p, 'ref_id');
    const refType = typeof p.ref_type === 'string' && p.ref_type ? p.ref_type : 'not_defined';
    if (p.payload === undefined || p.payload === null || typeof p.payload !== 'object')
      throw new MarieError(
        ErrorCode.InvalidArgument,
        'parameters.payload is required (an object)',
        { field: 'parameters.payload' },
      );
    const payload = p.payload as Record<string, unknown>;
    const args = { ...(payload.args as Record<string, unknown> | undefined), ...payload };
    const format = args.format ?? 'xywh';
    if (format !== 'xywh' && format !== 'xyxy')
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `parameters.payload.format: "${String(format)}" is not xywh or xyxy`,
        {
          field: 'parameters.payload.format',
        },
      );
    const mode = (MODES as readonly unknown[]).includes(args.mode) ? (args.mode as Mode) : 'sparse';
    const regions = parseRegions(args.regions);
    const engine = await this.#engine;
    const images = await this.#pages(docs);
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
      const out = [];
      for (const r of regions) {
        const img = images[r.pageIndex];
        if (!img)
          throw new MarieError(
            ErrorCode.InvalidArgument,
            `parameters.payload.regions: pageIndex ${r.pageIndex} is out of range (${images.length} pages)`,
          );
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const page = await engine.ocr(crop(img, r));
        const text = applyMode(page, r.mode ?? mode);
        const words = page.lines.flatMap((l) => l.words);
        out.push({ id: r.id, text, confidence: round(mean(words.map((w) => w.confidence)), 4) });
      }
      return {
        status: 'succeeded',
        runtime_info,
        metadata: { ref_id: refId, ref_type: refType, job_id: jobId, regions: out, extended: [] },
      };
    }
    const pages: ReturnType<typeof toMarieJson>[] = [];
    // One asset: its own page numbers (pages [3] is page 3); otherwise pages count from 0.
    const single = docs.length === 1 && docs[0]!.asset_key !== undefined;
    // Pages in flight together: one more than there are model workers keeps each of them busy;
    // on one thread (CUDA) several, so that their lines share recognition batches.
    let next = 0;
    const inFlight = engine.workers ? engine.workers + 1 : 4;
    await Promise.all(
      Array.from({ length: Math.min(inFlight, images.length) }, async () => {
        while (next < images.length) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const i = next++;
          const img = images[i]!;
          const page = await engine.ocr(img);
          const json = toMarieJson(page, single ? img.page : i, format);
          pages[i] = { ...json, text: applyMode(page, mode) } as typeof json;
        }
      }),
    );
    const metadata: Record<string, unknown> = {
      ref_id: refId,
      ref_type: refType,
      job_id: jobId,
      pages: String(pages.length),
      mode,
      format,
      time_ms: Math.round(performance.now() - started),
    };
    if (args.return_ocr === true) metadata.ocr = pages;
    if (this.storageEnabled) metadata.assets = await this.#persist(jobId, refId, refType, pages);
    return { status: 'succeeded', runtime_info, metadata };
  }

  #pages(docs: DocList<ExtractDoc>): Promise<PageImage[]> {
    return pageImages(docs, { dpi: this.#dpi, storage: this.storage.objects });
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
    const safe = (v: string) => v.replace(/[^\w.-]/g, '_');
    const base = this.#results ?? `file://${this.workspace}/results`;
    const uri = `${base.replace(/\/+$/, '')}/${safe(refId)}/${safe(jobId)}.json`;
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

function wholeNumber(field: string, v: unknown, min: number): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min))
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${field}: ${JSON.stringify(v)} is not a whole number >= ${min}`,
      { field },
    );
}

function required(p: Readonly<Record<string, unknown>>, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '')
    throw new MarieError(ErrorCode.InvalidArgument, `parameters.${key} is required`, {
      field: `parameters.${key}`,
    });
  return v;
}

function parseRegions(raw: unknown): Region[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw))
    throw new MarieError(ErrorCode.InvalidArgument, 'parameters.payload.regions: expected a list');
  return raw.map((r, i) => {
    const at = `parameters.payload.regions[${i}]`;
    if (!r || typeof r !== 'object')
      throw new MarieError(ErrorCode.InvalidArgument, `${at}: expected an object`, { field: at });
    const o = r as Record<string, unknown>;
    for (const k of ['pageIndex', 'x', 'y', 'w', 'h'])
      if (typeof o[k] !== 'number' || (o[k] as number) < 0)
        throw new MarieError(ErrorCode.InvalidArgument, `${at}.${k}: expected a number >= 0`, {
          field: `${at}.${k}`,
        });
    if ((o.w as number) < 1 || (o.h as number) < 1)
      throw new MarieError(ErrorCode.InvalidArgument, `${at}: w and h must be at least 1`, {
        field: at,
      });
    return {
      id: (o.id as string | number) ?? i,
      pageIndex: o.pageIndex as number,
      x: o.x as number,
      y: o.y as number,
      w: o.w as number,
      h: o.h as number,
      ...((MODES as readonly unknown[]).includes(o.mode) ? { mode: o.mode as Mode } : {}),
    };
  });
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

function crop(img: { data: Uint8Array; width: number; height: number }, r: Region) {
  const x0 = Math.max(0, Math.floor(r.x));
  const y0 = Math.max(0, Math.floor(r.y));
  const w = Math.max(1, Math.min(img.width - x0, Math.round(r.w)));
  const h = Math.max(1, Math.min(img.height - y0, Math.round(r.h)));
  // A margin of white around the region, as a detector expects text away from the border.
  const m = 16;
  const W = w + 2 * m;
  const H = h + 2 * m;
  const out = new Uint8Array(W * H * 3).fill(255);
  for (let y = 0; y < h; y++)
    out.set(
      img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3),
      ((y + m) * W + m) * 3,
    );
  return { data: out, width: W, height: H };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const round = (v: number, p: number) => Math.round(v * 10 ** p) / 10 ** p;
