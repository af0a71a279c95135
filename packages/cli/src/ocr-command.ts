import { writeFileSync } from 'node:fs';
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
  source: string;
  password?: string;
  output?: string;
}

/**
 * `marie ocr FILE...`: the text of PNG, JPEG, TIFF or PDF files in reading order on stdout
 * (`--format json`: Marie's per-page JSON with `meta.source`, one object per file with its
 * pages' `sources`): a PDF page from its text layer where usable, PP-OCRv4 where not
 * (`--source auto`, the default; `text`, `ocr`).
 */
export function ocrCommand(): Command {
  return new Command('ocr')
    .description('OCR of PNG, JPEG, TIFF or PDF files (PP-OCRv4 on ONNX Runtime)')
    .argument('<files...>', 'local paths, file:// or s3:// URIs')
    .option('--pages <list>', '0-based pages, comma separated (default: all)')
    .option('--dpi <n>', 'resolution PDF pages are rendered at', integer('--dpi', 10), 200)
    .option('--format <format>', 'text or json', 'text')
    .option(
      '--source <source>',
      "a PDF page's text: auto (its text layer where usable, OCR where not), text or ocr",
      'auto',
    )
    .option('--password <password>', "an encrypted PDF's password")
    .option(
      '--output <file.pdf>',
      "also write a searchable PDF: the input with an invisible text layer on the OCR'd words (one input file)",
    )
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
        const source = flags.source;
        if (source !== 'auto' && source !== 'text' && source !== 'ocr')
          throw new UsageError(`--source: "${source}" is not auto, text or ocr`);
        const password = flags.password !== undefined ? { password: flags.password } : {};
        if (flags.output !== undefined && files.length !== 1)
          throw new UsageError(`--output: one input file, not ${files.length}`);
        // Loaded here, not at startup: ONNX Runtime and the models are the OCR command's alone.
        const [
          { OcrEngine, chooseSource, readPage, toMarieJson },
          { docsFromAsset, pdfTextLayer, searchablePdf, StorageManager },
        ] = await Promise.all([import('@marie/ocr'), import('@marie/storage')]);
        const storage = new StorageManager({ file: { roots: ['/'] } });
        const engine = await OcrEngine.create({
          ...(flags.threads ? { threads: flags.threads } : {}),
          ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        });
        const out: unknown[] = [];
        for (const file of files) {
          // A plain path is the user's, relative to where they stand (not to the storage root).
          const asset = /^[a-z][a-z0-9+.-]*:\/\//i.test(file) ? file : resolve(file);
          // A PDF's text layer first (no rendering); pages rendered only where OCR is needed.
          const layers =
            source === 'ocr'
              ? undefined
              : await pdfTextLayer(asset, { pages, dpi: flags.dpi, storage, ...password });
          const todo = layers
            ? layers.map((layer) => ({
                page: layer.page,
                layer,
                decision: chooseSource(layer, source),
              }))
            : undefined;
          const render = todo
            ? todo.filter((t) => t.decision.source !== 'text').map((t) => t.page)
            : pages;
          const docs =
            render.length || !todo
              ? await docsFromAsset(asset, { pages: render, dpi: flags.dpi, storage, ...password })
              : [];
          const images = new Map(
            docs.map((doc) => {
              const t = doc.tensor!;
              const img = { data: t.data as Uint8Array, width: t.shape[1]!, height: t.shape[0]! };
              return [Number(doc.tags.page), img] as const;
            }),
          );
          const units =
            todo ??
            [...images.keys()].map((page) => ({ page, decision: chooseSource(undefined, 'ocr') }));
          const results = [];
          // Every page read at once (the workers take them in turn), printed in order.
          const read = units.map((u) =>
            readPage(engine, { ...u, image: async () => images.get(u.page)! }),
          );
          for (const r of read) r.catch(() => {}); // the first failure is thrown below
          for (const [i, u] of units.entries()) {
            const page = await read[i]!;
            if (flags.format === 'text') {
              if (files.length > 1 || units.length > 1)
                process.stdout.write(`--- ${file} page ${u.page} (${u.decision.source}) ---\n`);
              process.stdout.write(`${page.lines.map((l) => l.text).join('\n')}\n`);
            } else results.push(toMarieJson(page, u.page, 'xywh', u.decision.source));
          }
          if (flags.output !== undefined) {
            // The OCR'd words only: a page read from its text layer has it already (a mixed
            // page's own words have confidence 1; the OCR'd ones the model's).
            const layer = [];
            for (const [i, u] of units.entries()) {
              if (u.decision.source === 'text') continue;
              const page = await read[i]!;
              const words = page.lines
                .flatMap((l) => l.words)
                .filter((w) => u.decision.source === 'ocr' || w.confidence < 1);
              layer.push({ page: u.page, dpi: flags.dpi, words });
            }
            const pdf = await searchablePdf(await storage.read(asset), layer, {
              name: file,
              ...password,
            });
            writeFileSync(resolve(flags.output), pdf);
          }
          const sources = { text: 0, ocr: 0, mixed: 0 };
          for (const u of units) sources[u.decision.source]++;
          if (flags.format === 'json') out.push({ file, sources, pages: results });
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
