// bench/ocr: one run, the same cores, the accuracy set's letter pages (150 and 200 dpi) of known
// text: single columns, two columns, ruled tables, clean and degraded.
//   (a) the pipeline in process: on model workers (the CPU default, one per core, a thread each),
//       one page at a time and pages in flight; on this thread (workers 0, a thread per core
//       inside each operator, CUDA's way) with recognition batching on (8) and off (1), 4 pages
//       in flight (their crops batched together); and recognition alone, crops/s batched and not
//   (b) through `marie executor` (TextExtractionExecutor) over gRPC
//   (c) through a Flow gateway in front of it
//   (d) tesseract (Debian's tesseract-ocr), one process per core, when it is installed
//   (e) a born-digital PDF from its text layer, by pdfjs's bare getTextContent, by poppler's
//       pdftotext -bbox, and by OCR (bench/ocr/text-layer.ts)
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
import { createSession } from '@marie/gpu';
import {
  characterErrorRate as cer,
  cropQuad,
  detect,
  dictionary,
  modelPaths,
  OcrEngine,
  type RgbImage,
  recognize,
  wordF1,
} from '@marie/ocr';
import { docsFromAsset, StorageManager } from '@marie/storage';
import { accuracySet } from '../../packages/ocr/test/accuracy-set.js';
import { textLayerRows } from './text-layer.js';

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
  await fn(0); // warm-up: two pages (JIT, the model arenas, the child's first requests)
  await fn(1 % set.length);
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
const textOf = async (e: OcrEngine, i: number, set = pages) =>
  (await e.ocr(set[i]!.image)).lines.map((l) => l.text).join('\n');
const workers = await OcrEngine.create();
const a = await measure(`(a) ${workers.workers} workers, 1 page at a time`, (i) =>
  textOf(workers, i),
);
const aw = await measure(
  `(a) ${workers.workers} workers, ${workers.workers} pages in flight`,
  (i) => textOf(workers, i),
  workers.workers,
);
await measure('(a) degraded pages (accuracy)', (i) => textOf(workers, i, degraded), 1, degraded);
// What the executor does with an asset key: read and decode the file, then OCR it.
const storage = new StorageManager({ file: { roots: [dir] } });
const fromFile = await measure(`(a) ${workers.workers} workers, from the file`, async (i) => {
  const [doc] = await docsFromAsset(pages[i]!.file, { storage });
  const t = doc!.tensor!;
  const page = await workers.ocr({
    data: t.data as Uint8Array,
    width: t.shape[1]!,
    height: t.shape[0]!,
  });
  return page.lines.map((l) => l.text).join('\n');
});
await Promise.all([workers.close(), storage.close()]);
// On this thread: one queue batches the line crops of every page in flight.
const batched = await OcrEngine.create({ threads, workers: 0, batchSize: 8 });
const unbatched = await OcrEngine.create({ threads, workers: 0, batchSize: 1 });
await measure('(a) 1 thread, 1 page at a time', (i) => textOf(unbatched, i));
const runs0 = batched.recognitionStats.runs;
const af = await measure('(a) 1 thread, 4 in flight, batching on', (i) => textOf(batched, i), 4);
const runsPerPage = (batched.recognitionStats.runs - runs0) / (pages.length + 1);
const af1 = await measure(
  '(a) 1 thread, 4 in flight, batching off',
  (i) => textOf(unbatched, i),
  4,
);
await Promise.all([batched.close(), unbatched.close()]);
// Recognition alone: every line crop of the pages, batched by width (8) and one by one.
const rec = await recognitionThroughput(
  pages.map((p) => p.image),
  threads,
);

// (b) a `marie executor` child process over gRPC (the Flow's Deployment sends to it), and (c) the
// Flow's gateway in front of it, each sent what Marie's clients send: an asset key (the file),
// which the executor reads and decodes as (a) "from the file" does. Their text is (a)'s: only the
// time is compared. Also shown: the page as a tensor in the request, which Jina's protocol sends
// back in the answer's documents (6.3 MB each way at 150 dpi).
const flow = new Flow({ protocol: 'grpc', port: 0 }).add({
  name: 'ocr',
  uses: 'TextExtractionExecutor',
  pyModules: [MODULE],
  usesWith: { storage: { file: { roots: [dir] } } },
});
await flow.start();
const assetDoc = (i: number) => [{ asset_key: pages[i]!.file }];
const tensorDoc = (i: number) => {
  const img = pages[i]!.image;
  return [{ tensor: new NdArray(img.data, [img.height, img.width, 3], 'uint8') }];
};
const params = (i: number) => ({
  parameters: { job_id: `bench-${i}-${Date.now()}`, ref_id: `p${i}`, payload: {} },
});
const deployment = flow.deployments.get('ocr')!;
const b = await measure('(b) marie executor over gRPC', async (i) => {
  await deployment.post('/document/extract', assetDoc(i), params(i));
  return pages[i]!.text;
});
const gw = new Client({ host: flow.addresses[0]! });
const c = await measure('(c) through the gateway', async (i) => {
  await gw.post('/document/extract', assetDoc(i), params(i));
  return pages[i]!.text;
});
const bt = await measure('(b) the page as a tensor', async (i) => {
  await deployment.post('/document/extract', tensorDoc(i), params(i));
  return pages[i]!.text;
});
gw.close();
await flow.close();

let tesseract: Row | undefined;
try {
  await run('tesseract', ['--version']);
  tesseract = { label: '', pagesPerS: 0, p50: 0 };
} catch {}
if (tesseract) {
  const ocr = async (file: string) =>
    (
      await run('tesseract', [file, 'stdout'], {
        env: { ...process.env, OMP_THREAD_LIMIT: '1' },
      })
    ).stdout;
  tesseract = await measure(
    `(d) tesseract, ${threads} processes`,
    (i) => ocr(pages[i]!.file),
    threads,
  );
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
  `  recognition alone: ${rec.crops} crops, batched (8) ${rec.batched.toFixed(1)} crops/s, one by one ${rec.single.toFixed(1)} crops/s: batching ${(rec.batched / rec.single).toFixed(2)}x`,
);
console.log(
  `  batching on/off with 4 pages in flight ${(af.pagesPerS / af1.pagesPerS).toFixed(2)}x (${runsPerPage.toFixed(1)} recognition runs per page); (b)/(a from the file) ${(b.pagesPerS / fromFile.pagesPerS).toFixed(2)}x; (c)/(a from the file) ${(c.pagesPerS / fromFile.pagesPerS).toFixed(2)}x; tensor (b)/(a) ${(bt.pagesPerS / a.pagesPerS).toFixed(2)}x; the page as a tensor / as an asset key, both (b): ${(bt.pagesPerS / b.pagesPerS).toFixed(2)}x (target >= 0.95)` +
    (tesseract
      ? `; ours (${aw.label.slice(4)}) / tesseract ${(aw.pagesPerS / tesseract.pagesPerS).toFixed(2)}x`
      : ''),
);
// (e) the text layer against OCR and poppler (bench/ocr/text-layer.ts; its own engine).
await textLayerRows();
rmSync(dir, { recursive: true, force: true });

/** crops/s of recognition alone over every line crop of the pages: batches of 8 and single crops. */
async function recognitionThroughput(images: RgbImage[], threads: number) {
  const ort = await import('onnxruntime-node');
  const paths = modelPaths();
  const keys = dictionary();
  const so = { providers: ['cpu' as const], intraOpNumThreads: threads };
  const det = (await createSession(paths.det, so)).session;
  const session = (await createSession(paths.rec, so)).session;
  const crops: RgbImage[] = [];
  for (const img of images)
    for (const { quad } of await detect(ort, det, img)) crops.push(cropQuad(img, quad, 48));
  const rate = async (batchSize: number) => {
    await recognize(ort, session, keys, crops.slice(0, 8), { batchSize }); // warm-up
    const t = performance.now();
    await recognize(ort, session, keys, crops, { batchSize });
    return (crops.length / (performance.now() - t)) * 1000;
  };
  const single = await rate(1);
  const batched = await rate(8);
  await Promise.all([det.release(), session.release()]);
  return { crops: crops.length, single, batched };
}
