// bench/docs-codec: JSON encode/decode of 1,000 documents, each with a 768-float32 embedding,
// through DocList (validation, tensors as NdArray) next to JSON.stringify/JSON.parse of the same
// plain data (embeddings as number arrays). Run: npm run bench:docs-codec
import { DocList, defineDoc, Embedding, Type } from '@marie/docs';

const DOCS = Number(process.env.DOCS ?? 1000);
const DIM = 768;
const ROUNDS = Number(process.env.ROUNDS ?? 30);

const EmbeddedDoc = defineDoc('EmbeddedDoc', {
  text: Type.String({ default: '' }),
  embedding: Embedding({ dtype: 'float32', shape: [DIM] }),
});

let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const plain = Array.from({ length: DOCS }, (_, i) => ({
  id: i.toString(16).padStart(32, '0'),
  text: `document number ${i}`,
  // Float32 values, as a float32 embedding holds them.
  embedding: Array.from(Float32Array.from({ length: DIM }, random)),
}));
const docs = new DocList(EmbeddedDoc, plain);

function measure(label: string, fn: () => string | unknown, bytesOf: () => number) {
  for (let i = 0; i < 3; i++) fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  return { label, ms, docsPerSec: (DOCS / ms) * 1000, mbPerSec: bytesOf() / 1e6 / (ms / 1000) };
}

const plainText = JSON.stringify(plain);
const listText = JSON.stringify(docs);
const b64Text = JSON.stringify(docs.toJSON({ tensors: 'base64' }));

// Sanity: what we decode is what we encoded.
const back = DocList.fromJSON(EmbeddedDoc, b64Text);
if (!back[DOCS - 1]!.embedding.equals(docs[DOCS - 1]!.embedding))
  throw new Error('base64 round trip differs');
if (!DocList.fromJSON(EmbeddedDoc, listText)[0]!.embedding.equals(docs[0]!.embedding))
  throw new Error('list round trip differs');

const rows = [
  measure(
    'encode  JSON.stringify(plain)        [baseline]',
    () => JSON.stringify(plain),
    () => plainText.length,
  ),
  measure(
    'encode  DocList -> JSON, tensors as lists',
    () => JSON.stringify(docs),
    () => listText.length,
  ),
  measure(
    'encode  DocList -> JSON, tensors base64',
    () => JSON.stringify(docs.toJSON({ tensors: 'base64' })),
    () => b64Text.length,
  ),
  measure(
    'decode  JSON.parse(plain)            [baseline]',
    () => JSON.parse(plainText),
    () => plainText.length,
  ),
  measure(
    'decode  JSON -> DocList, tensors as lists',
    () => DocList.fromJSON(EmbeddedDoc, listText),
    () => listText.length,
  ),
  measure(
    'decode  JSON -> DocList, tensors base64',
    () => DocList.fromJSON(EmbeddedDoc, b64Text),
    () => b64Text.length,
  ),
];

console.log(
  `docs-codec: ${DOCS} docs x ${DIM} float32, median of ${ROUNDS} rounds, node ${process.version}`,
);
console.log(
  `JSON size: plain ${(plainText.length / 1e6).toFixed(2)} MB, lists ${(listText.length / 1e6).toFixed(2)} MB, base64 ${(b64Text.length / 1e6).toFixed(2)} MB`,
);
console.log('');
console.log(
  `${'case'.padEnd(48)} ${'ms'.padStart(8)} ${'docs/s'.padStart(10)} ${'MB/s'.padStart(8)} ${'x baseline'.padStart(11)}`,
);
for (const r of rows) {
  const base = r.label.startsWith('encode') ? rows[0]! : rows[3]!;
  const ratio = r.docsPerSec / base.docsPerSec;
  console.log(
    `${r.label.padEnd(48)} ${r.ms.toFixed(2).padStart(8)} ${Math.round(r.docsPerSec).toString().padStart(10)} ${r.mbPerSec.toFixed(1).padStart(8)} ${ratio.toFixed(2).padStart(11)}`,
  );
}
