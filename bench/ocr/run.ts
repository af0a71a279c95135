// bench/ocr: one run, the same cores, 150 dpi letter pages (1275 x 1650) of known text.
//   (a) the pipeline in process, recognition batching on (8) and off (1)
//   (b) through `marie executor` (TextExtractionExecutor) over gRPC
//   (c) through a Flow gateway in front of it
//   (d) tesseract (Debian's tesseract-ocr), one process per core, when it is installed
// pages/s, p50 per page, and CER / word F1 of ours and tesseract's on the same pages.
// Run: npm run bench:ocr   (PAGES=6 by default)
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@marie/client';
import { NdArray } from '@marie/docs';
import { Flow } from '@marie/flow';
import { characterErrorRate as cer, OcrEngine, wordF1 } from '@marie/ocr';
import sharp from 'sharp';

const PAGES = Number(process.env.PAGES ?? 6);
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MODULE = join(ROOT, 'apps/text-extraction/src/text-extraction.ts');
const dir = mkdtempSync(join(tmpdir(), 'marie-bench-ocr-'));

const WORDS =
  'document invoice total amount payment customer order delivery account number date reference service contract period balance tax rate quantity price item description address office report quarter revenue growth market product support review approval signature'.split(
    ' ',
  );
let seed = 11;
const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
const sentence = () => {
  const n = 6 + rnd(5);
  const w = Array.from({ length: n }, () => WORDS[rnd(WORDS.length)]!);
  w[0] = w[0]!.charAt(0).toUpperCase() + w[0]!.slice(1);
  if (rnd(3) === 0) w.splice(2 + rnd(3), 0, String(100 + rnd(9900)));
  return `${w.join(' ')}.`;
};

const pages: {
  file: string;
  text: string;
  image: { data: Uint8Array; width: number; height: number };
}[] = [];
for (let p = 0; p < PAGES; p++) {
  const lines = Array.from({ length: 32 }, sentence);
  const font = ['DejaVu Serif', 'DejaVu Sans', 'Liberation Serif', 'Liberation Sans'][p % 4];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1275" height="1650"><rect width="100%" height="100%" fill="white"/>${lines
    .map(
      (l, i) =>
        `<text x="110" y="${150 + i * 42}" font-family="${font}" font-size="24">${l}</text>`,
    )
    .join('')}</svg>`;
  const file = join(dir, `page-${p}.png`);
  await sharp(Buffer.from(svg)).flatten({ background: '#fff' }).png().toFile(file);
  const { data, info } = await sharp(file)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  pages.push({
    file,
    text: lines.join('\n'),
    image: { data: new Uint8Array(data), width: info.width, height: info.height },
  });
}

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
): Promise<Row> {
  await fn(0); // warm-up
  const times: number[] = [];
  const texts: string[] = new Array(PAGES);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < PAGES) {
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
    pagesPerS: (PAGES / wall) * 1000,
    p50: times[Math.floor(times.length / 2)]!,
    cer: pages.reduce((s, p, i) => s + cer(p.text, norm(texts[i]!)), 0) / PAGES,
    f1: pages.reduce((s, p, i) => s + wordF1(p.text, texts[i]!), 0) / PAGES,
  };
  rows.push(row);
  return row;
}

const threads = Math.max(1, availableParallelism());
const batched = await OcrEngine.create({ threads, batchSize: 8 });
const unbatched = await OcrEngine.create({ threads, batchSize: 1 });
const textOf = async (e: OcrEngine, i: number) =>
  (await e.ocr(pages[i]!.image)).lines.map((l) => l.text).join('\n');
const a = await measure('(a) in process, batching on', (i) => textOf(batched, i));
const a1 = await measure('(a) in process, batching off', (i) => textOf(unbatched, i));

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
  await measure(
    `(d) tesseract, ${threads} processes`,
    async (i) =>
      (
        await run('tesseract', [pages[i]!.file, 'stdout'], {
          env: { ...process.env, OMP_THREAD_LIMIT: '1' },
        })
      ).stdout,
    threads,
  );
}

console.log(`${PAGES} pages, 150 dpi letter, ${threads} cores, provider ${batched.provider}:`);
for (const r of rows)
  console.log(
    `  ${r.label.padEnd(34)} ${r.pagesPerS.toFixed(2).padStart(6)} pages/s  p50 ${r.p50.toFixed(0).padStart(5)} ms` +
      (r.label.startsWith('(b)') || r.label.startsWith('(c)')
        ? ''
        : `  CER ${(r.cer! * 100).toFixed(2)}%  F1 ${r.f1!.toFixed(3)}`),
  );
console.log(
  `  batching on/off ${(a.pagesPerS / a1.pagesPerS).toFixed(2)}x; (b)/(a) ${(b.pagesPerS / a.pagesPerS).toFixed(2)}x; (c)/(a) ${(c.pagesPerS / a.pagesPerS).toFixed(2)}x`,
);
rmSync(dir, { recursive: true, force: true });
