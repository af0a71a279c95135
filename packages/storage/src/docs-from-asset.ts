import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@marie/core';
import { DocList, MarieDoc, NdArray, newDocId } from '@marie/docs';
import { describe, StorageError } from './errors.js';
import { StorageManager } from './objects/storage-manager.js';

export type AssetType = 'png' | 'jpeg' | 'tiff' | 'pdf';

export interface DocsFromAssetOptions {
  /** 0-based pages; empty or absent means all. */
  pages?: readonly number[];
  /** Resolution PDF pages are rendered at (default 200). */
  dpi?: number;
  /** Where the asset is read from (default: a StorageManager for local files only). */
  storage?: StorageManager;
  /** The PDF's password, when it is encrypted. */
  password?: string;
}

/** The type of an asset by its magic bytes, or undefined. */
export function sniffAssetType(bytes: Uint8Array): AssetType | undefined {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47)
    return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (
    b.length >= 4 &&
    ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) ||
      (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))
  )
    return 'tiff';
  // PDF readers accept the header anywhere in the first KiB.
  if (Buffer.from(b.subarray(0, 1024)).includes('%PDF-')) return 'pdf';
  return undefined;
}

/**
 * Marie's `docs_from_asset`: a local path, `file://` or `s3://` asset as one MarieDoc per page,
 * with a uint8 HWC RGB `tensor` and tags `{page, source, dpi}`. PNG and JPEG are one page, TIFF
 * every page, PDF pages are rendered (pdfjs-dist) at `dpi`. A wrong type, a page out of range or a
 * corrupt file is an error naming the asset; a downloaded copy is removed.
 */
export async function docsFromAsset(
  assetKey: string,
  options: DocsFromAssetOptions = {},
): Promise<DocList<MarieDoc>> {
  const dpi = options.dpi ?? 200;
  if (!Number.isFinite(dpi) || dpi < 10 || dpi > 1200)
    throw new StorageError(`${assetKey}: dpi ${dpi} is outside 10-1200`, {
      code: ErrorCode.InvalidArgument,
    });
  const storage = options.storage ?? new StorageManager();
  const bytes = await readAsset(storage, assetKey);
  const type = sniffAssetType(bytes);
  if (!type)
    throw new StorageError(
      `${assetKey}: not a PNG, JPEG, TIFF or PDF (first bytes ${Buffer.from(bytes.subarray(0, 8)).toString('hex') || 'none'})`,
      { code: ErrorCode.InvalidArgument },
    );
  const pages = [...(options.pages ?? [])];
  for (const [i, p] of pages.entries())
    if (!Number.isInteger(p) || p < 0)
      throw new StorageError(`${assetKey}: pages[${i}] = ${p} is not a page number (0-based)`, {
        code: ErrorCode.InvalidArgument,
      });
  try {
    const docs =
      type === 'pdf'
        ? await pdfPages(assetKey, bytes, pages, dpi, options.password)
        : await imagePages(assetKey, bytes, type, pages);
    return new DocList(MarieDoc, docs, { trusted: true });
  } catch (err) {
    if (err instanceof StorageError) throw err;
    throw new StorageError(
      `${assetKey}: cannot read this ${type.toUpperCase()}: ${describe(err)}`,
      {
        code: ErrorCode.InvalidArgument,
      },
    );
  }
}

/**
 * How many pages an asset has (PNG and JPEG: 1; TIFF: its directories; PDF: its pages), without
 * rendering any: what a client needs to send a document page by page.
 */
export async function assetPageCount(
  assetKey: string,
  options: { storage?: StorageManager } = {},
): Promise<number> {
  const bytes = await readAsset(options.storage ?? new StorageManager(), assetKey);
  const type = sniffAssetType(bytes);
  if (!type)
    throw new StorageError(`${assetKey}: not a PNG, JPEG, TIFF or PDF`, {
      code: ErrorCode.InvalidArgument,
    });
  try {
    if (type === 'png' || type === 'jpeg') return 1;
    if (type === 'tiff') {
      const { default: sharp } = await import('sharp');
      return (await sharp(bytes).metadata()).pages ?? 1;
    }
    pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs');
    const doc = await (await pdfjs).getDocument({
      data: new Uint8Array(bytes),
      isEvalSupported: false,
      verbosity: 0,
    }).promise;
    const n = doc.numPages;
    await doc.destroy();
    return n;
  } catch (err) {
    throw new StorageError(
      `${assetKey}: cannot read this ${type.toUpperCase()}: ${describe(err)}`,
      {
        code: ErrorCode.InvalidArgument,
      },
    );
  }
}

/** An asset's bytes; a remote one through a temporary file. */
export async function readAsset(storage: StorageManager, assetKey: string): Promise<Buffer> {
  const handler = storage.handlerFor(assetKey);
  if (handler === storage.files) return storage.read(assetKey);
  // Remote assets pass through a temporary file (streamed, never half-kept), removed afterwards.
  const dir = await mkdtemp(join(tmpdir(), 'marie-asset-'));
  try {
    const file = join(dir, 'asset');
    await storage.readToFile(assetKey, file);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function checkPages(assetKey: string, pages: number[], count: number): number[] {
  if (pages.length === 0) return Array.from({ length: count }, (_, i) => i);
  for (const p of pages)
    if (p >= count)
      throw new StorageError(
        `${assetKey}: page ${p} is out of range (the asset has ${count} page${count === 1 ? '' : 's'}, 0-based)`,
        {
          code: ErrorCode.OutOfRange,
        },
      );
  return pages;
}

async function imagePages(
  assetKey: string,
  bytes: Buffer,
  type: AssetType,
  requested: number[],
): Promise<MarieDoc[]> {
  const { default: sharp } = await import('sharp');
  const meta = await sharp(bytes).metadata();
  const count = type === 'tiff' ? (meta.pages ?? 1) : 1;
  const pages = checkPages(assetKey, requested, count);
  const out: MarieDoc[] = [];
  for (const page of pages) {
    const { data, info } = await sharp(bytes, type === 'tiff' ? { page } : {})
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rgb = toRgb(data, info.width, info.height, info.channels);
    out.push({
      id: '',
      tensor: new NdArray(rgb, [info.height, info.width, 3], 'uint8'),
      tags: { page, source: assetKey, dpi: meta.density ?? null },
    } as MarieDoc);
  }
  return out.map(withId);
}

let pdfjs: Promise<typeof import('pdfjs-dist/legacy/build/pdf.mjs')> | undefined;

/**
 * A PDF opened with pdfjs-dist (its standard fonts and CMaps from the package), and the pages
 * asked for checked against its count. An encrypted PDF without its password, or with a wrong
 * one, is an error naming the asset and saying which.
 */
export async function openPdf(
  assetKey: string,
  bytes: Uint8Array,
  requested: readonly number[],
  password?: string,
) {
  pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs');
  const lib = await pdfjs;
  const root = createRequire(import.meta.url)
    .resolve('pdfjs-dist/package.json')
    .replace(/package\.json$/, '');
  let doc: Awaited<ReturnType<typeof lib.getDocument>['promise']>;
  try {
    doc = await lib.getDocument({
      data: new Uint8Array(bytes),
      standardFontDataUrl: join(root, 'standard_fonts/'),
      cMapUrl: join(root, 'cmaps/'),
      cMapPacked: true,
      isEvalSupported: false,
      verbosity: 0,
      ...(password !== undefined ? { password } : {}),
    }).promise;
  } catch (err) {
    if ((err as { name?: string }).name === 'PasswordException')
      throw new StorageError(
        password === undefined
          ? `${assetKey}: the PDF is encrypted: give its password (parameter password)`
          : `${assetKey}: the PDF's password is wrong`,
        { code: ErrorCode.InvalidArgument },
      );
    throw err;
  }
  try {
    if (doc.numPages === 0)
      throw new StorageError(`${assetKey}: the PDF has no pages`, {
        code: ErrorCode.InvalidArgument,
      });
    return { lib, doc, pages: checkPages(assetKey, [...requested], doc.numPages) };
  } catch (err) {
    await doc.destroy();
    throw err;
  }
}

async function pdfPages(
  assetKey: string,
  bytes: Buffer,
  requested: number[],
  dpi: number,
  password?: string,
): Promise<MarieDoc[]> {
  const { doc, pages } = await openPdf(assetKey, bytes, requested, password);
  try {
    const out: MarieDoc[] = [];
    // One canvas for every page (reset to each page's size): a canvas per page would keep tens of
    // MB of native memory each until the garbage collector gets to them.
    const factory = (doc as any).canvasFactory;
    let target: { canvas: any; context: any } | undefined;
    try {
      for (const index of pages) {
        const page = await doc.getPage(index + 1);
        const viewport = page.getViewport({ scale: dpi / 72 });
        const width = Math.ceil(viewport.width);
        const height = Math.ceil(viewport.height);
        if (target) factory.reset(target, width, height);
        else target = factory.create(width, height);
        const { canvas, context } = target!;
        context.fillStyle = '#ffffff';
        context.fillRect(0, 0, width, height);
        await page.render({ canvas, canvasContext: context, viewport } as any).promise;
        const rgba: Uint8ClampedArray = context.getImageData(0, 0, width, height).data;
        out.push({
          id: '',
          tensor: new NdArray(toRgb(rgba, width, height, 4), [height, width, 3], 'uint8'),
          tags: { page: index, source: assetKey, dpi },
        } as MarieDoc);
        page.cleanup();
      }
    } finally {
      if (target) factory.destroy(target);
    }
    return out.map(withId);
  } finally {
    await doc.destroy();
  }
}

function withId(doc: MarieDoc): MarieDoc {
  return { ...doc, id: newDocId() };
}

function toRgb(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, width * height * 3);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    const r = data[j]!;
    out[i * 3] = r;
    out[i * 3 + 1] = channels >= 3 ? data[j + 1]! : r;
    out[i * 3 + 2] = channels >= 3 ? data[j + 2]! : r;
  }
  return out;
}
