// bench/storage: @marie/storage next to raw node-postgres, in the same run.
// 1. store 10,000 documents (768-float32 embedding + ~1 KB JSON content) in batches of 100, each
//    batch one transaction, vs a raw `pg` multi-row INSERT of the same rows into an identical table.
// 2. docsFromAsset on a 10-page PDF and a 10-page TIFF: pages/s and peak RSS (own process each).
// Run: npm run bench:storage   (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DocList, NdArray, StorageDoc } from '@marie/docs';
import { Database, DocumentStore, docsFromAsset, parsePsqlConfig, shardOf } from '@marie/storage';
import pg from 'pg';

const mode = process.argv[2];
if (mode === 'pdf' || mode === 'tiff') {
  // Child: one asset type, its own peak RSS.
  const file = process.argv[3]!;
  await docsFromAsset(file, { pages: [0] }); // warm-up (loads pdfjs / sharp)
  const t = performance.now();
  const docs = await docsFromAsset(file, { dpi: 200 });
  const ms = performance.now() - t;
  const { shape } = docs[0]!.tensor!;
  console.log(
    JSON.stringify({
      pages: docs.length,
      ms,
      shape,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
    }),
  );
  process.exit(0);
}

const DOCS = Number(process.env.DOCS ?? 10_000);
const BATCH = 100;
const DIM = 768;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const admin = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const rows = Array.from({ length: DOCS }, (_, i) => ({
  id: `doc-${i}`,
  content: { text: 'lorem ipsum dolor sit amet '.repeat(37).slice(0, 1000), page: i % 10 },
  tags: { action: 'extract', ttl: 2880 },
  embedding: Float32Array.from({ length: DIM }, random),
}));
const docs = new DocList(
  StorageDoc,
  rows.map((r) => ({ ...r, embedding: new NdArray(r.embedding) })),
);

const dbName = `marie_bench_${process.pid}`;
const adminClient = new pg.Client({ connectionString: admin });
await adminClient.connect();
await adminClient.query(`CREATE DATABASE ${dbName}`);
const url = new URL(admin);
url.pathname = `/${dbName}`;

const db = await Database.connect(parsePsqlConfig({ enabled: true, url: url.href, pool_size: 1 }));
const ours = new DocumentStore(db, 'public', 'bench_store');
const theirs = new DocumentStore(db, 'public', 'raw_store'); // the same table, for the raw INSERT
await ours.migrate();
await theirs.migrate();
const raw = new pg.Pool({ connectionString: url.href, max: 1 });

async function runOurs(): Promise<number> {
  await db.query('TRUNCATE bench_store');
  const t = performance.now();
  for (let i = 0; i < DOCS; i += BATCH)
    await ours.store('bench', 'doc', 'content', docs.slice(i, i + BATCH));
  return performance.now() - t;
}

async function runRaw(): Promise<number> {
  await raw.query('TRUNCATE raw_store');
  const t = performance.now();
  for (let i = 0; i < DOCS; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const values: unknown[] = [];
    const tuples = batch.map((r, j) => {
      values.push(
        r.id,
        'bench',
        'doc',
        'content',
        JSON.stringify(r.tags),
        JSON.stringify(r.content),
        Array.from(r.embedding),
        shardOf(r.id),
      );
      const b = j * 8;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8})`;
    });
    const client = await raw.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO raw_store (doc_id, ref_id, ref_type, store_mode, tags, content, embedding, shard) VALUES ${tuples.join(', ')}`,
        values,
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const oursMs: number[] = [];
const rawMs: number[] = [];
await runRaw();
await runOurs(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  rawMs.push(await runRaw());
  oursMs.push(await runOurs());
}
const check = await db.query('SELECT count(*)::int AS n FROM bench_store');
if (check.rows[0].n !== DOCS) throw new Error(`stored ${check.rows[0].n} of ${DOCS}`);
const rawRate = DOCS / (median(rawMs) / 1000);
const ourRate = DOCS / (median(oursMs) / 1000);
console.log(
  `store ${DOCS} docs (${DIM}-float embedding + 1 KB content), batches of ${BATCH}, median of ${ROUNDS}:`,
);
console.log(`  raw pg multi-row INSERT   ${rawRate.toFixed(0).padStart(7)} docs/s`);
console.log(`  DocumentStore.store       ${ourRate.toFixed(0).padStart(7)} docs/s`);
console.log(
  `  ratio                     ${(ourRate / rawRate).toFixed(2)}x of raw (target >= 0.80)`,
);
await raw.end();
await db.close();
await adminClient.query(`DROP DATABASE ${dbName} WITH (FORCE)`);
await adminClient.end();

// docsFromAsset on 10-page documents.
const dir = mkdtempSync(join(tmpdir(), 'marie-bench-assets-'));
try {
  const { PDFDocument, StandardFonts } = await import('pdf-lib');
  const sharp = (await import('sharp')).default;
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (let p = 0; p < 10; p++) {
    const page = pdf.addPage([612, 792]);
    for (let l = 0; l < 40; l++)
      page.drawText(`Page ${p + 1}, line ${l + 1}: the quick brown fox jumps over the lazy dog`, {
        x: 50,
        y: 740 - l * 17,
        size: 11,
        font,
      });
  }
  writeFileSync(join(dir, 'ten.pdf'), await pdf.save());
  const pages = await Promise.all(
    Array.from({ length: 10 }, (_, p) =>
      sharp({
        create: {
          width: 1700,
          height: 2200,
          channels: 3,
          background: { r: 250 - p, g: 250, b: 250 },
        },
      })
        .png()
        .toBuffer(),
    ),
  );
  await sharp(pages, { join: { animated: true } })
    .tiff({ compression: 'lzw' })
    .toFile(join(dir, 'ten.tiff'));
  for (const [kind, file] of [
    ['pdf', join(dir, 'ten.pdf')],
    ['tiff', join(dir, 'ten.tiff')],
  ] as const) {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, import.meta.filename, kind, file],
      {
        encoding: 'utf8',
        env: { ...process.env, MARIE_STORAGE_ROOTS: dir },
      },
    );
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    console.log(
      `docsFromAsset ${kind.toUpperCase().padEnd(4)} ${r.pages} pages at 200 dpi (${r.shape.join('x')}): ${((r.pages / r.ms) * 1000).toFixed(1)} pages/s, peak RSS ${r.maxRssMB.toFixed(0)} MB`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
