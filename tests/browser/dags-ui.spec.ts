import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../packages/storage/test/support/postgres.js';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';

// /ui/dags in Debian's chromium (driven by playwright-core): the bundled document pipeline
// (examples/pipelines: orientation and PP-OCRv4 per page, a merge, fields, a guardrail, store) runs
// a TIFF scan on a real gateway; the page draws the DAG with every node coloured by its state,
// a click on an OCR node shows its page with the word boxes, a click on the field node its output.
// The screenshot is left in the OS temp folder.
const SAMPLES = join(ROOT, 'examples/ocr/samples');

describe.skipIf(!chromiumAvailable)('/ui/dags in a real browser', () => {
  let marie: MarieProcess;
  let http: string;
  let browser: Browser;
  let dir: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await testDatabase('marie_dags_ui');
    drop = db.drop;
    dir = await mkdtemp(join(tmpdir(), 'marie-dags-ui-'));
    marie = runMarie(['flow', '--uses', join(ROOT, 'examples/pipelines/flow.yml')], {
      env: {
        MARIE_JOBS_DATABASE_URL: db.url,
        MARIE_WORKSPACE: dir,
        MARIE_STORAGE_ROOTS: [SAMPLES, dir].join(':'),
      },
    });
    const ready = await waitReady(marie, 2, 120_000);
    http = ready.find((l) => l.includes('http://'))!.slice('ready '.length);
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

  it('draws the DAG coloured by state, an OCR node with its word boxes, the fields node with its output', async () => {
    const res = await fetch(`${http}/api/v1/dags`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        plan: 'document',
        asset_key: join(SAMPLES, 'scan.tiff'),
        ref_id: 'scan.tiff',
      }),
    });
    expect(res.status).toBe(202);
    const { dag_id } = (await res.json()) as { dag_id: string };
    const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${http}/ui/dags?dag=${dag_id}`);
    // Followed over its events until it ends: every node drawn, coloured by its end.
    await expect
      .poll(async () => page.locator('#status').getAttribute('data-state'), { timeout: 120_000 })
      .toBe('completed');
    const states = await page
      .locator('.graph g.node')
      .evaluateAll((gs) =>
        gs.map((g) => `${g.getAttribute('data-node')}:${g.getAttribute('data-state')}`),
      );
    expect(states.sort()).toEqual(
      [
        'check:completed',
        'fields:completed',
        'ocr:completed',
        'ocr[0]:completed',
        'ocr[1]:completed',
        'orient:completed',
        'orient[0]:completed',
        'orient[1]:completed',
        'pages:completed',
        'review:skipped',
        'store:completed',
      ].sort(),
    );
    expect(await page.locator('.graph g.node.state-completed').count()).toBe(10);
    expect(await page.locator('.graph path.edge').count()).toBeGreaterThan(10);
    // An OCR node: its page, as the OCR saw it, with the word boxes on it.
    await page.locator('.graph g.node[data-node="ocr[1]"]').click();
    const boxes = page.locator('#pages .sheet svg rect.word');
    await boxes.first().waitFor({ timeout: 10_000 });
    expect(await boxes.count()).toBeGreaterThan(10);
    const img = page.locator('#pages .sheet img').first();
    await expect
      .poll(() => img.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth))
      .toBeGreaterThan(100);
    await boxes.first().hover();
    await expect.poll(() => page.locator('#tip').isVisible()).toBe(true);
    // The field node: its output, the date found on page 1.
    await page.locator('.graph g.node[data-node="fields"]').click();
    await expect.poll(() => page.locator('#node-output').textContent()).toContain('"kind": "date"');
    expect(await page.locator('#node-title').textContent()).toContain('fields://document/fields');
    // The recent list has it.
    expect(await page.locator(`#dags tr[data-dag="${dag_id}"]`).count()).toBe(1);
    await page.screenshot({ path: join(tmpdir(), 'marie-dags-ui.png'), fullPage: true });
    expect(errors).toEqual([]);
    // A page past the asset's end, and an unknown DAG: 404.
    expect((await fetch(`${http}/ui/api/dags/${dag_id}/pages/9`)).status).toBe(404);
    expect(
      (await fetch(`${http}/ui/api/dags/00000000-0000-4000-8000-000000000000/pages/0`)).status,
    ).toBe(404);
    await page.close();
  }, 180_000);
});
