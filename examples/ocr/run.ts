// `npm start`: starts a Flow (text-extraction behind the gateway) on this machine, OCRs the
// sample documents page by page through the gateway with a progress bar, prints the text and a
// summary, writes Marie's per-page OCR JSON to a folder, and stops everything.
//   SAMPLES="a.pdf b.tiff" npm start   OCRs your own files instead.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Client } from '@marie/client';
import { loadFlow } from '@marie/flow';
import { assetPageCount } from '@marie/storage';
import cliProgress from 'cli-progress';

const root = resolve(import.meta.dirname, '..', '..');
const samples = (
  process.env.SAMPLES?.split(/\s+/).filter(Boolean) ?? [
    join(import.meta.dirname, 'samples', 'letter.pdf'),
    join(import.meta.dirname, 'samples', 'scan.tiff'),
  ]
).map((f) => resolve(f));
// Executors' workspaces (the embedded Postgres among them) and the OCR JSON live here.
process.env.MARIE_WORKSPACE ??= join(root, '.marie', 'workspace');
// The executor reads the samples where they are, and writes under its workspace.
process.env.MARIE_STORAGE_ROOTS ??= [
  ...new Set([...samples.map((f) => resolve(f, '..')), process.env.MARIE_WORKSPACE]),
].join(':');
const outDir = resolve(process.env.MARIE_OCR_OUT ?? join(root, '.marie', 'ocr'));

interface Word {
  text: string;
  confidence: number;
}
interface Page {
  meta: { page: number };
  words: Word[];
  lines: { text: string }[];
}

const started = performance.now();
const flow = await loadFlow(join(import.meta.dirname, 'flow.yml'));
await flow.start();
const client = new Client({ host: flow.addresses[0] });
const bar = new cliProgress.SingleBar(
  {
    format: ' {doc} |{bar}| page {value}/{total}  {ms} ms/page',
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    stream: process.stderr,
  },
  cliProgress.Presets.shades_classic,
);
const perPage: number[] = [];
const results: { file: string; pages: Page[]; json: string }[] = [];
try {
  console.log(`gateway ${flow.addresses[0]}: ${samples.length} documents`);
  for (const file of samples) {
    const count = await assetPageCount(file);
    const pages: Page[] = [];
    bar.start(count, 0, { doc: basename(file).padEnd(12), ms: '-' });
    for (let page = 0; page < count; page++) {
      const t0 = performance.now();
      let ocr: Page[] | undefined;
      await client.post('/document/extract', [{ asset_key: file, pages: [page] }], {
        parameters: {
          job_id: `npm-start-${basename(file)}-${page}-${Date.now()}`,
          ref_id: basename(file),
          ref_type: 'sample',
          payload: { return_ocr: true },
        },
        // Marie's answer is the executor's result, in parameters.__results__.
        onDone: ({ parameters }) => {
          const results = parameters.__results__ as Record<string, { metadata: { ocr: Page[] } }>;
          ocr = results?.['text-extraction']?.metadata.ocr;
        },
      });
      const ms = performance.now() - t0;
      perPage.push(ms);
      if (!ocr) throw new Error(`${file} page ${page}: the executor answered no OCR`);
      pages.push(...ocr);
      bar.update(page + 1, { ms: Math.round(ms) });
    }
    bar.stop();
    mkdirSync(outDir, { recursive: true });
    const json = join(outDir, `${basename(file)}.json`);
    writeFileSync(json, JSON.stringify(pages, null, 2));
    results.push({ file, pages, json });
  }
} finally {
  bar.stop();
  client.close();
  await flow.close();
}

for (const { file, pages } of results)
  for (const p of pages) {
    console.log(`\n--- ${basename(file)} page ${p.meta.page + 1} ---`);
    console.log(p.lines.map((l) => l.text).join('\n'));
  }
const words = results.flatMap((r) => r.pages.flatMap((p) => p.words));
const pageCount = results.reduce((n, r) => n + r.pages.length, 0);
const mean = words.reduce((s, w) => s + w.confidence, 0) / Math.max(words.length, 1);
const sorted = [...perPage].sort((a, b) => a - b);
console.log(
  `\n${results.length} documents, ${pageCount} pages, ${words.length} words, mean confidence ${mean.toFixed(3)}, ` +
    `${Math.round(sorted.reduce((a, b) => a + b, 0) / Math.max(sorted.length, 1))} ms per page ` +
    `(p50 ${Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0)} ms), ${((performance.now() - started) / 1000).toFixed(1)} s in all`,
);
console.log(`OCR JSON (Marie's per-page shape) in ${outDir}/`);
