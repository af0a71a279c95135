// bench/ocr: one run, the same cores, the accuracy set's letter pages (150 and 200 dpi) of known
// text: single columns, two columns, ruled tables, clean and degraded.
//   (a) the pipeline in process, recognition batching on (8) and off (1), one page at a time
//       and 4 pages in flight (their crops batched together)
//   (b) through `marie executor` (TextExtractionExecutor) over gRPC
//   (c) through a Flow gateway in front of it
//   (d) tesseract (Debian's tesseract-ocr), one process per core, when it is installed
// pages/s, p50 per page, and CER / word F1 of ours and tesseract's on the same pages.
// Run: npm run bench:ocr   (PAGES=12 clean pages by default; tesseract from apt when installed)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@marie/client';
import { NdArray } from '@marie/docs';
import { Flow } from '@marie/flow';
import { characterErrorRate as cer, OcrEngine, wordF1 } from '@marie/ocr';
import { accuracySet } from '../../packages/ocr/test/accuracy-set.js';

const PAGES = Number(process.env.PAGES ?? 12);
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MODULE = join(ROOT, 'apps/text-extraction/src/text-extraction.ts');
const dir = mkdtempSync(join(tmpdir(), 'marie-bench-ocr-'));

// The accuracy set (packages/ocr/test/accuracy-set.ts): 24 pages, 12 layouts clean and degraded.
const SET = await accuracySet();
const onDisk = SET.map((p) => {
  const file = join(dir, `${p.name}.${p.degraded ? 'jpg' : 'png'}`);
  writeFileSync(file, p.file);
  return { ...p, file };
});
// Speed: the clean pages (PAGES of them, all 12 unless given); accuracy: every page.
const pages = onDisk.filter((p) => !p.degraded).slice(0, PAGES);
const degraded = onDisk.filter((p) => p.degraded);

const norm = (s: string) =>
  s
    .replace(/[ \t]+/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('\n');

interface Row {
  label: string;
  pagesPerS: number;
  p50: number;
  cer?: number;
  f1?: number;
}
const rows: Row[] = [];
async function measure(
  label: string,
  fn: (i: number) => Promise<string>,
  concurrency = 1,
  set: typeof pages = pages,
): Promise<Row> {
  await fn(0); // warm-up
  const times: number[] = [];
  const texts: string[] = new Array(set.length);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < set.length) {
        const i = next++;
        const t = performance.now();
        texts[i] = await fn(i);
        times.push(performance.now() - t);
      }
    }),
  );
  const wall = performance.now() - t0;
  times.sort((a, b) => a - b);
  const row: Row = {
    label,
    pagesPerS: (set.length / wall) * 1000,
    p50: times[Math.floor(times.length / 2)]!,
    cer: set.reduce((s, p, i) => s + cer(p.text, norm(texts[i]!)), 0) / set.length,
    f1: set.reduce((s, p, i) => s + wordF1(p.text, texts[i]!), 0) / set.length,
  };
  rows.push(row);
  return row;
}

const threads = Math.max(1, availableParallelism());
const batched = await OcrEngine.create({ threads, batchSize: 8 });
const unbatched = await OcrEngine.create({ threads, batchSize: 1 });
const textOf = async (e: OcrEngine, i: number, set = pages) =>
  (await e.ocr(set[i]!.image)).lines.map((l) => l.text).join('\n');
const a = await measure('(a) in process, batching on', (i) => textOf(batched, i));
const a1 = await measure('(a) in process, batching off', (i) => textOf(unbatched, i));
// Pages in flight together on one engine: their line crops share recognition batches.
const runs0 = batched.recognitionStats.runs;
const af = await measure('(a) 4 pages in flight, batching on', (i) => textOf(batched, i), 4);
const runsPerPage = (batched.recognitionStats.runs - runs0) / (pages.length + 1);
const af1 = await measure('(a) 4 pages in flight, batching off', (i) => textOf(unbatched, i), 4);
await measure('(a) degraded pages (accuracy)', (i) => textOf(batched, i, degraded), 1, degraded);

// (b) a `marie executor` child process over gRPC (the Flow's Deployment sends to it), and (c) the
// Flow's gateway in front of it. Their text is (a)'s: only the time is compared.
const flow = new Flow({ protocol: 'grpc', port: 0 }).add({
  name: 'ocr',
  uses: 'TextExtractionExecutor',
  pyModules: [MODULE],
  usesWith: { threads },
});
await flow.start();
const tensorDoc = (i: number) => {
  const img = pages[i]!.image;
  return [{ tensor: new NdArray(img.data, [img.height, img.width, 3], 'uint8') }];
};
const params = (i: number) => ({
  parameters: { job_id: `bench-${i}-${Date.now()}`, ref_id: `p${i}`, payload: {} },
});
const deployment = flow.deployments.get('ocr')!;
const b = await measure('(b) marie executor over gRPC', async (i) => {
  await deployment.post('/document/extract', tensorDoc(i), params(i));
  return pages[i]!.text;
});
const gw = new Client({ host: flow.addresses[0]! });
const c = await measure('(c) through the gateway', async (i) => {
  await gw.post('/document/extract', tensorDoc(i), params(i));
  return pages[i]!.text;
});
gw.close();
await flow.close();

let tesseract = false;
try {
  await run('tesseract', ['--version']);
  tesseract = true;
} catch {}
if (tesseract) {
  const ocr = async (file: string) =>
    (
      await run('tesseract', [file, 'stdout'], {
        env: { ...process.env, OMP_THREAD_LIMIT: '1' },
      })
    ).stdout;
  await measure(`(d) tesseract, ${threads} processes`, (i) => ocr(pages[i]!.file), threads);
  await measure(
    '(d) tesseract, degraded pages (accuracy)',
    (i) => ocr(degraded[i]!.file),
    threads,
    degraded,
  );
}

console.log(
  `${pages.length} clean pages (speed and accuracy) and ${degraded.length} degraded (accuracy), ${threads} cores, provider ${batched.provider}:`,
);
for (const r of rows)
  console.log(
    `  ${r.label.padEnd(34)} ${r.pagesPerS.toFixed(2).padStart(6)} pages/s  p50 ${r.p50.toFixed(0).padStart(5)} ms` +
      (r.label.startsWith('(b)') || r.label.startsWith('(c)')
        ? ''
        : `  CER ${(r.cer! * 100).toFixed(2)}%  F1 ${r.f1!.toFixed(3)}`),
  );
console.log(
  `  batching on/off ${(a.pagesPerS / a1.pagesPerS).toFixed(2)}x one page at a time, ${(af.pagesPerS / af1.pagesPerS).toFixed(2)}x with 4 in flight (${runsPerPage.toFixed(1)} recognition runs per page); (b)/(a) ${(b.pagesPerS / a.pagesPerS).toFixed(2)}x; (c)/(a) ${(c.pagesPerS / a.pagesPerS).toFixed(2)}x`,
);
rmSync(dir, { recursive: true, force: true });
