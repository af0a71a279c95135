import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataRequest, RequestHandler } from '@marie/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageOrientationExecutor } from './page-orientation.js';

const dir = mkdtempSync(join(tmpdir(), 'marie-orient-'));
const tiff = join(dir, 'scan.tiff');
let handler: RequestHandler;

const page = (lines: string[]) =>
  sharp(
    Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="850" height="1100"><rect width="100%" height="100%" fill="white"/>${lines
        .map(
          (l, i) =>
            `<text x="70" y="${120 + i * 60}" font-family="DejaVu Serif" font-size="30">${l}</text>`,
        )
        .join('')}</svg>`,
    ),
  ).png();

beforeAll(async () => {
  const text = [
    'The quarterly report shows steady growth',
    'in every region we serve, with revenue up',
    'by twelve percent over the last period.',
    'Orders from new customers doubled and the',
    'warehouse in Hamburg shipped on schedule.',
  ];
  const upright = await page(text).toBuffer();
  const flipped = await sharp(await page(text.reverse()).toBuffer())
    .rotate(180)
    .png()
    .toBuffer();
  // Page 0 upright, page 1 upside down, page 2 blank.
  const blank = await sharp({
    create: { width: 850, height: 1100, channels: 3, background: '#fff' },
  })
    .png()
    .toBuffer();
  await sharp([upright, flipped, blank], { join: { animated: true } })
    .tiff()
    .toFile(tiff);
  writeFileSync(join(dir, 'note.txt'), 'not an image');
  const exec = new PageOrientationExecutor({
    workers: 2,
    providers: ['cpu'],
    metas: { workspace: dir },
    storage: { file: { roots: [dir] } },
  });
  handler = new RequestHandler(exec);
  await handler.open();
});
afterAll(async () => {
  await handler?.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (docs: object[], parameters: Record<string, unknown> = {}) =>
  handler.handle(createDataRequest({ endpoint: '/document/orientation', docs, parameters }));

describe('PageOrientationExecutor', () => {
  it('tells an upright page from an upside-down one, and a blank one from both', async () => {
    const res = await post([{ asset_key: tiff }]);
    expect(res.header.status).toBeUndefined();
    const { pages } = (res.parameters.__results__ as any).PageOrientationExecutor;
    expect(pages.map((p: { page: number; rotation: number }) => [p.page, p.rotation])).toEqual([
      [0, 0],
      [1, 180],
      [2, 0],
    ]);
    expect(pages[0].confidence).toBeGreaterThan(0.9);
    expect(pages[1].confidence).toBeGreaterThan(0.9);
    expect(pages[0].lines).toBe(5);
    expect(pages[2]).toMatchObject({ confidence: 0, lines: 0 });
  });

  it('answers the pages turned upright with correct: true', async () => {
    const res = await post([{ asset_key: tiff, pages: [1] }], { correct: true });
    expect(res.header.status).toBeUndefined();
    const [doc] = res.docs as { tensor: { shape: number[] }; tags: Record<string, unknown> }[];
    expect(doc!.tags).toMatchObject({ page: 1, rotation: 180 });
    expect(doc!.tensor.shape).toEqual([1100, 850, 3]);
    // Turned upright, the page now votes upright.
    const again = await post([{ tensor: doc!.tensor }]);
    const { pages } = (again.parameters.__results__ as any).PageOrientationExecutor;
    expect(pages[0].rotation).toBe(0);
  });

  it('names what is wrong', async () => {
    const none = await post([]);
    expect(none.header.status?.description).toContain('expected an asset_key or an image');
    const txt = await post([{ asset_key: join(dir, 'note.txt') }]);
    expect(txt.header.status?.description).toContain('note.txt: not a PNG, JPEG, TIFF or PDF');
    const bad = await post([{ asset_key: tiff }], { correct: 'yes' });
    expect(bad.header.status?.description).toContain('parameters.correct: expected boolean');
  });
});
