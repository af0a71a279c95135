import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import {
  executorArgs,
  type MarieProcess,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

// A person's path through the API docs: Debian's chromium (installed by .ci/run), driven by
// playwright-core, opens /docs, picks an endpoint, "Try it out", "Execute", reads the answer.

describe.skipIf(!chromiumAvailable)('Swagger UI in a real browser', () => {
  let marie: MarieProcess;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    marie = runMarie(
      executorArgs(join(ROOT, 'tests/conformance/reference.yml'), { protocols: ['http'] }),
    );
    base = (await waitReady(marie))[0]!.slice('ready '.length);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    marie?.child.kill('SIGTERM');
    await marie?.exited;
  });

  it('opens /docs, tries POST /upper out, and sees the answer', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/docs`);
    const operation = page
      .locator('.opblock-post', { has: page.locator('[data-path="/upper"]') })
      .first();
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation
      .locator('textarea.body-param__text')
      .fill(JSON.stringify({ data: [{ text: 'from the browser' }], parameters: {} }));
    await operation.getByRole('button', { name: 'Execute' }).click();
    const answer = operation.locator('.live-responses-table .response-col_description pre').first();
    await answer.waitFor({ timeout: 15_000 });
    const text = (await answer.textContent()) ?? '';
    expect(JSON.parse(text).data[0].text).toBe('FROM THE BROWSER');
    await page.screenshot({ path: join(tmpdir(), 'marie-swagger-ui.png'), fullPage: false });
    await page.close();
  }, 60_000);
});
