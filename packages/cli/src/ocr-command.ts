import { resolve } from 'node:path';
import { Command } from 'commander';
import { exitWith, UsageError } from './errors.js';
import { integer } from './parse.js';

interface OcrFlags {
  pages?: string;
  dpi: number;
  format: string;
  threads?: number;
  workers?: number;
}

/**
 * `marie ocr FILE...`: OCR of PNG, JPEG, TIFF or PDF files on PP-OCRv4, text in reading order on
 * stdout (`--format json`: Marie's per-page JSON, one object per file).
 */
export function ocrCommand(): Command {
  return new Command('ocr')
    .description('OCR of PNG, JPEG, TIFF or PDF files (PP-OCRv4 on ONNX Runtime)')
    .argument('<files...>', 'local paths, file:// or s3:// URIs')
    .option('--pages <list>', '0-based pages, comma separated (default: all)')
    .option('--dpi <n>', 'resolution PDF pages are rendered at', integer('--dpi', 10), 200)
    .option('--format <format>', 'text or json', 'text')
    .option('--threads <n>', 'ONNX Runtime threads (per worker)', integer('--threads', 1))
    .option(
      '--workers <n>',
      'model worker threads (default: one per core on CPU)',
      integer('--workers', 0),
    )
    .action(async (files: string[], flags: OcrFlags) => {
      try {
        if (flags.format !== 'text' && flags.format !== 'json')
          throw new UsageError(`--format: "${flags.format}" is not text or json`);
        const pages = parsePages(flags.pages);
        // Loaded here, not at startup: ONNX Runtime and the models are the OCR command's alone.
        const [{ OcrEngine, toMarieJson }, { docsFromAsset, StorageManager }] = await Promise.all([
          import('@marie/ocr'),
          import('@marie/storage'),
        ]);
        const storage = new StorageManager({ file: { roots: ['/'] } });
        const engine = await OcrEngine.create({
          ...(flags.threads ? { threads: flags.threads } : {}),
          ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        });
        const out: unknown[] = [];
        for (const file of files) {
          // A plain path is the user's, relative to where they stand (not to the storage root).
          const asset = /^[a-z][a-z0-9+.-]*:\/\//i.test(file) ? file : resolve(file);
          const docs = await docsFromAsset(asset, { pages, dpi: flags.dpi, storage });
          const results = [];
          // Every page read at once (the workers take them in turn), printed in order.
          const read = docs.map((doc) => {
            const t = doc.tensor!;
            return engine.ocr({
              data: t.data as Uint8Array,
              width: t.shape[1]!,
              height: t.shape[0]!,
            });
          });
          for (const r of read) r.catch(() => {}); // the first failure is thrown below
          for (const [i, doc] of docs.entries()) {
            const page = await read[i]!;
            if (flags.format === 'text') {
              if (files.length > 1 || docs.length > 1)
                process.stdout.write(`--- ${file} page ${doc.tags.page} ---\n`);
              process.stdout.write(`${page.lines.map((l) => l.text).join('\n')}\n`);
            } else results.push(toMarieJson(page, Number(doc.tags.page)));
          }
          if (flags.format === 'json') out.push({ file, pages: results });
        }
        if (flags.format === 'json')
          process.stdout.write(`${JSON.stringify(files.length === 1 ? out[0] : out)}\n`);
        await Promise.all([storage.close(), engine.close()]);
      } catch (err) {
        exitWith('marie ocr', err);
      }
    });
}

function parsePages(list: string | undefined): number[] {
  if (!list) return [];
  return list.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`--pages: "${p}" is not a 0-based page number`);
    return n;
  });
}
