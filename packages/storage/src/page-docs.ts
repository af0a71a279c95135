import { ErrorCode, MarieError } from '@marie/core';
import { type DocOf, defineDoc, ImageTensor, Type } from '@marie/docs';
import { docsFromAsset } from './docs-from-asset.js';
import type { StorageManager } from './objects/storage-manager.js';

/**
 * A page source for document executors: an asset (`asset_key`: a path, `file://` or `s3://`,
 * with optional 0-based `pages`: Marie's AssetKeyDoc) or one image (`tensor`, uint8 HWC RGB).
 */
export const PageDoc = defineDoc('PageDoc', {
  asset_key: Type.Optional(Type.String()),
  pages: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }))),
  tensor: Type.Optional(ImageTensor()),
  tags: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type PageDoc = DocOf<typeof PageDoc>;

/** One page image: uint8 RGB, row-major, and its page number. */
export interface PageImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** The asset's own page number (pages [3] is page 3); images count on from the pages before. */
  page: number;
}

/**
 * The page images of a request's documents, in order: each asset's pages (docsFromAsset, PDFs
 * rendered at `dpi`), each image as it is. No documents, a document with neither field or an
 * image that is not [height, width, 3] is an INVALID_ARGUMENT error naming the document.
 */
export async function pageImages(
  docs: Iterable<Pick<PageDoc, 'asset_key' | 'pages' | 'tensor'>>,
  options: { dpi?: number; storage?: StorageManager; password?: string } = {},
): Promise<PageImage[]> {
  const out: PageImage[] = [];
  let i = 0;
  for (const d of docs) {
    if (d.asset_key) {
      const pages = await docsFromAsset(d.asset_key, {
        pages: d.pages ?? [],
        ...(options.dpi !== undefined ? { dpi: options.dpi } : {}),
        ...(options.storage ? { storage: options.storage } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
      });
      for (const p of pages)
        out.push({ ...rgb(p.tensor!, `docs[${i}]`), page: Number(p.tags.page) });
    } else if (d.tensor) out.push({ ...rgb(d.tensor, `docs[${i}].tensor`), page: out.length });
    else
      throw new MarieError(ErrorCode.InvalidArgument, `docs[${i}]: neither asset_key nor tensor`, {
        field: `docs[${i}]`,
      });
    i++;
  }
  if (i === 0)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      'expected an asset_key or an image tensor, got no documents',
      { field: 'docs' },
    );
  return out;
}

function rgb(t: { data: unknown; shape: readonly number[] }, field: string) {
  if (t.shape.length !== 3 || t.shape[2] !== 3)
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${field}: expected [height, width, 3] uint8, got [${t.shape.join(', ')}]`,
      { field },
    );
  return { data: t.data as Uint8Array, width: t.shape[1]!, height: t.shape[0]! };
}
