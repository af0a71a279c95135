import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';

// A person's path through /ui: Debian's chromium (installed by .ci/run), driven by playwright-core,
// uploads a TIFF scan to a gateway whose job API runs it through Marie's TextExtractionExecutor
// (PP-OCRv4, a real model), watches the job end, and sees the page with its word boxes; hovering
// a box shows its text and confidence. The screenshot is left in the OS temp folder.
const SCAN = join(ROOT, 'examples/ocr/samples/scan.tiff');
interface OcrPage {
  meta: { page: number; imageSize: { width: number; height: number } };
}

describe.skipIf(!chromiumAvailable)('/ui in a real browser', () => {
  let marie: MarieProcess;
  let base: string;
  let browser: Browser;
  let dir: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await testDatabase('marie_jobs_ui');
    drop = db.drop;
    dir = await mkdtemp(join(tmpdir(), 'marie-ui-'));
    const uploads = join(dir, 'uploads');
    const workspace = join(dir, 'workspace');
    marie = runMarie(['flow', '--uses', join(ROOT, 'tests/browser/fixtures/ui-flow.yml')], {
      env: {
        JOBS_DATABASE_URL: db.url,
        UPLOADS: uploads,
        MARIE_WORKSPACE: workspace,
        MARIE_STORAGE_ROOTS: [uploads, workspace].join(':'),
      },
    });
    base = (await waitReady(marie, 1, 120_000))[0]!.slice('ready '.length);
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    marie?.child.kill('SIGTERM');
    const exited = await marie?.exited;
    await drop?.();
    if (dir) await rm(dir, { recursive: true, force: true });
    expect(exited?.code, marie?.stderr()).toBe(0);
  }, 60_000);

  it('uploads a TIFF, follows its job, draws its word boxes, shows a word on hover', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/ui`);
    await page.locator('#file').setInputFiles(SCAN);
    await page.getByRole('button', { name: 'Upload and extract' }).click();
    await expect
      .poll(async () => page.locator('#status').getAttribute('data-state'), { timeout: 120_000 })
      .toBe('completed');
    const boxes = page.locator('.sheet svg rect.word');
    await boxes.first().waitFor({ timeout: 10_000 });
    expect(await boxes.count()).toBeGreaterThan(10);
    // The page image is the document's page, as the OCR saw it.
    const img = page.locator('.sheet img').first();
    await expect
      .poll(() =>
        img.evaluate(
          (i) => (i as unknown as { complete: boolean; naturalWidth: number }).naturalWidth,
        ),
      )
      .toBeGreaterThan(100);
    // The text beside it holds what the boxes say.
    const text = (await page.locator('.page .text').first().textContent()) ?? '';
    const first = (await boxes.first().getAttribute('data-text')) ?? '';
    expect(first.length).toBeGreaterThan(0);
    expect(text).toContain(first);
    await boxes.first().hover();
    const tip = page.locator('#tip');
    await expect.poll(() => tip.isVisible()).toBe(true);
    expect(await tip.textContent()).toMatch(/^.+ · (0|1)\.\d{3}$/);
    // The recent jobs list shows it completed.
    await expect
      .poll(() => page.locator('#jobs tr[data-state="completed"]').count(), { timeout: 10_000 })
      .toBeGreaterThan(0);
    await page.screenshot({ path: join(tmpdir(), 'marie-jobs-ui.png'), fullPage: false });
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);

  it('a PDF: its pages are rendered as the OCR saw them (the page PNG is the size of its boxes)', async () => {
    const up = await fetch(`${base}/ui/api/upload?name=letter.pdf`, {
      method: 'POST',
      headers: { 'content-type': 'application/pdf' },
      body: await readFile(join(ROOT, 'examples/ocr/samples/letter.pdf')),
    });
    expect(up.status).toBe(202);
    const { job_id } = (await up.json()) as { job_id: string };
    let job: {
      state: string;
      result?: { results: Record<string, { metadata: { ocr: OcrPage[] } }> };
    };
    for (;;) {
      job = (await (await fetch(`${base}/api/v1/jobs/${job_id}`)).json()) as typeof job;
      if (['completed', 'failed', 'expired', 'cancelled'].includes(job.state)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(job.state).toBe('completed');
    const pages = Object.values(job.result!.results)[0]!.metadata.ocr;
    expect(pages.length).toBeGreaterThan(0);
    for (const p of pages) {
      const png = Buffer.from(
        await (await fetch(`${base}/ui/api/jobs/${job_id}/pages/${p.meta.page}`)).arrayBuffer(),
      );
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      // IHDR: width and height, big-endian, at bytes 16 and 20.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([
        p.meta.imageSize.width,
        p.meta.imageSize.height,
      ]);
    }
    const past = await fetch(`${base}/ui/api/jobs/${job_id}/pages/${pages.length}`);
    expect(past.status).toBe(404);
  }, 120_000);

  it('refuses a file that is not a document, naming why', async () => {
    const res = await fetch(`${base}/ui/api/upload?name=notes.txt`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'just text',
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toContain(
      'not a PNG, JPEG, TIFF or PDF',
    );
    const page = await fetch(`${base}/ui/api/jobs/00000000-0000-4000-8000-000000000000/pages/0`);
    expect(page.status).toBe(404);
  });
});
