import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@marie/core';
import { NdArray } from '@marie/docs';
import { PDFDocument, rgb, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type TestS3 } from '../test/support/s3rver.js';
import { assetPageCount, docsFromAsset, sniffAssetType } from './docs-from-asset.js';
import { StorageManager } from './objects/storage-manager.js';
import { pageImages } from './page-docs.js';

// Fixtures made here: a red/blue PNG, a JPEG, a 3-page TIFF with a different gray per page, and a
// 2-page letter PDF with text (a black bar and words) rendered for real.
const dir = mkdtempSync(join(tmpdir(), 'marie-assets-'));
const files = {
  png: join(dir, 'a.png'),
  jpeg: join(dir, 'b.jpg'),
  tiff: join(dir, 'c.tiff'),
  pdf: join(dir, 'd.pdf'),
  bad: join(dir, 'e.png'),
  txt: join(dir, 'f.txt'),
};
const storage = new StorageManager({ file: { roots: [dir] } });

beforeAll(async () => {
  // 40 x 20: left half red, right half blue.
  const px = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++)
    for (let x = 0; x < 40; x++) px.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
  await sharp(px, { raw: { width: 40, height: 20, channels: 3 } })
    .png()
    .toFile(files.png);
  await sharp(px, { raw: { width: 40, height: 20, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(files.jpeg);
  const pages = [40, 120, 200].map((g) =>
    sharp({ create: { width: 30, height: 10, channels: 3, background: { r: g, g, b: g } } }).png(),
  );
  const bufs = await Promise.all(pages.map((p) => p.toBuffer()));
  await sharp(bufs, { join: { animated: true } })
    .tiff()
    .toFile(files.tiff);
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const [i, word] of ['Invoice 2026', 'Total due'].entries()) {
    const page = pdf.addPage([612, 792]);
    page.drawRectangle({ x: 72, y: 600, width: 200, height: 50, color: rgb(0, 0, 0) });
    page.drawText(`${word} page ${i + 1}`, { x: 72, y: 700, size: 24, font });
  }
  writeFileSync(files.pdf, await pdf.save());
  writeFileSync(
    files.bad,
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(50, 1),
    ]),
  );
  writeFileSync(files.txt, 'just text');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pixel = (t: NdArray, x: number, y: number) => {
  const w = t.shape[1]!;
  const i = (y * w + x) * 3;
  const d = t.data as Uint8Array;
  return [d[i], d[i + 1], d[i + 2]];
};

describe('docsFromAsset', () => {
  it('knows the type by magic bytes', async () => {
    const { readFileSync } = await import('node:fs');
    expect(Object.values(files).map((f) => sniffAssetType(readFileSync(f)))).toEqual([
      'png',
      'jpeg',
      'tiff',
      'pdf',
      'png',
      undefined,
    ]);
  });

  it('a PNG is one page with a uint8 HWC RGB tensor and tags {page, source, dpi}', async () => {
    const docs = await docsFromAsset(files.png, { storage });
    expect(docs).toHaveLength(1);
    const t = docs[0]!.tensor!;
    expect([t.dtype, ...t.shape]).toEqual(['uint8', 20, 40, 3]);
    expect(pixel(t, 5, 5)).toEqual([255, 0, 0]);
    expect(pixel(t, 35, 5)).toEqual([0, 0, 255]);
    expect(docs[0]!.tags).toMatchObject({ page: 0, source: files.png });
    expect(docs[0]!.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a JPEG through file://', async () => {
    const docs = await docsFromAsset(`file://${files.jpeg}`, { storage });
    const [r, g, b] = pixel(docs[0]!.tensor!, 5, 10) as number[];
    expect(r).toBeGreaterThan(230);
    expect(g! + b!).toBeLessThan(40);
  });

  it('a TIFF gives every page, or the pages asked for', async () => {
    const all = await docsFromAsset(files.tiff, { storage });
    expect(all.map((d) => pixel(d.tensor!, 1, 1)[0])).toEqual([40, 120, 200]);
    expect(all.map((d) => d.tags.page)).toEqual([0, 1, 2]);
    const some = await docsFromAsset(files.tiff, { storage, pages: [2, 0] });
    expect(some.map((d) => [d.tags.page, pixel(d.tensor!, 1, 1)[0]])).toEqual([
      [2, 200],
      [0, 40],
    ]);
  });

  it('a PDF is rendered at the dpi asked for: text and shapes land where they were drawn', async () => {
    const docs = await docsFromAsset(files.pdf, { storage, dpi: 100 });
    expect(docs).toHaveLength(2);
    const t = docs[1]!.tensor!;
    expect(t.shape).toEqual([1100, 850, 3]);
    expect(docs[1]!.tags).toEqual({ page: 1, source: files.pdf, dpi: 100 });
    // The black bar: x 72-272 pt, y 600-650 pt from the bottom -> rows 197-264 at 100 dpi.
    expect(pixel(t, 150, 230)).toEqual([0, 0, 0]);
    expect(pixel(t, 400, 230)).toEqual([255, 255, 255]);
    // The text line (baseline at 700 pt -> row ~128): some dark pixels where glyphs are.
    let dark = 0;
    for (let x = 100; x < 400; x++)
      for (let y = 105; y < 130; y++) if (pixel(t, x, y)[0]! < 100) dark++;
    expect(dark).toBeGreaterThan(300);
    const one = await docsFromAsset(files.pdf, { storage, pages: [0] });
    expect(one[0]!.tensor!.shape).toEqual([2200, 1700, 3]); // 200 dpi by default
  });

  it('counts pages without rendering them', async () => {
    expect(await assetPageCount(files.png, { storage })).toBe(1);
    expect(await assetPageCount(files.tiff, { storage })).toBe(3);
    expect(await assetPageCount(files.pdf, { storage })).toBe(2);
    await expect(assetPageCount(files.txt, { storage })).rejects.toThrow(
      `${files.txt}: not a PNG, JPEG, TIFF or PDF`,
    );
    writeFileSync(join(dir, 'cut.pdf'), '%PDF-1.7\n1 0 obj\n');
    await expect(assetPageCount(join(dir, 'cut.pdf'), { storage })).rejects.toThrow(
      'cut.pdf: cannot read this PDF',
    );
  });

  it('a wrong type, a page out of range and a corrupt file are errors naming the asset', async () => {
    await expect(docsFromAsset(files.txt, { storage })).rejects.toThrow(
      `${files.txt}: not a PNG, JPEG, TIFF or PDF`,
    );
    await expect(docsFromAsset(files.tiff, { storage, pages: [3] })).rejects.toThrow(
      `${files.tiff}: page 3 is out of range (the asset has 3 pages, 0-based)`,
    );
    await expect(docsFromAsset(files.pdf, { storage, pages: [-1] })).rejects.toThrow(
      'pages[0] = -1 is not a page number',
    );
    await expect(docsFromAsset(files.bad, { storage })).rejects.toThrow(
      `${files.bad}: cannot read this PNG`,
    );
    await expect(docsFromAsset(join(dir, 'none.png'), { storage })).rejects.toThrow(
      /none\.png: read failed/,
    );
  });

  describe('from s3://', () => {
    let s3: TestS3;
    beforeAll(async () => {
      s3 = await startS3(['marie']);
    });
    afterAll(async () => s3?.destroy());

    it('downloads to a temporary file that is removed afterwards', async () => {
      const m = new StorageManager({
        s3: {
          endpoint: s3.endpoint,
          accessKeyId: 'S3RVER',
          secretAccessKey: 'S3RVER',
          forcePathStyle: true,
        },
      });
      await m.copy(files.tiff, 's3://marie/scans/c.tiff'); // the default roots hold the OS temp folder
      const before = readdirSync(tmpdir()).filter((n) => n.startsWith('marie-asset-'));
      const docs = await docsFromAsset('s3://marie/scans/c.tiff', { storage: m, pages: [1] });
      expect(docs.map((d) => d.tags)).toEqual([
        { page: 1, source: 's3://marie/scans/c.tiff', dpi: null },
      ]);
      expect(docs[0]!.tensor!.shape).toEqual([10, 30, 3]);
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith('marie-asset-'))).toEqual(before);
      await expect(docsFromAsset('s3://marie/scans/none.tiff', { storage: m })).rejects.toThrow(
        /s3:\/\/marie\/scans\/none\.tiff: read failed/,
      );
      await m.close();
    });
  });
});

describe('pageImages', () => {
  it("gives each asset's pages (its own numbers) and each image in order", async () => {
    const img = new NdArray(new Uint8Array(4 * 2 * 3).fill(7), [2, 4, 3], 'uint8');
    const pages = await pageImages(
      [{ asset_key: files.tiff, pages: [2, 0] }, { tensor: img }, { asset_key: files.png }],
      { storage },
    );
    expect(pages.map((p) => [p.page, p.width, p.height])).toEqual([
      [2, 30, 10],
      [0, 30, 10],
      [2, 4, 2],
      [0, 40, 20],
    ]);
    expect(pages[0]!.data[0]).toBe(200);
    expect(pages[1]!.data[0]).toBe(40);
    expect(pages[2]!.data[0]).toBe(7);
  });

  it('names the document that is wrong', async () => {
    await expect(pageImages([], { storage })).rejects.toThrow(
      'expected an asset_key or an image tensor, got no documents',
    );
    await expect(
      pageImages([{ asset_key: files.png }, { pages: [0] }], { storage }),
    ).rejects.toThrow('docs[1]: neither asset_key nor tensor');
    const gray = new NdArray(new Uint8Array(8), [2, 4], 'uint8');
    const err = await pageImages([{ tensor: gray }], { storage }).catch((e) => e);
    expect(err.message).toBe('docs[0].tensor: expected [height, width, 3] uint8, got [2, 4]');
    expect(err.code).toBe(ErrorCode.InvalidArgument);
  });
});
