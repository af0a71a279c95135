// Starts the example Flow on this machine (no external service), posts sample documents through
// its gateway, prints what came back, and stops everything.
import { join } from 'node:path';
import { Client } from '@marie/client';
import { loadFlow } from '@marie/flow';

const flow = await loadFlow(join(import.meta.dirname, 'pipeline.yml'));
await flow.start();
console.log(`gateway: ${flow.addresses.join(' ')}`);
const client = new Client({ host: flow.addresses[0] });
const samples = [
  '  Invoice  NUMBER 42 ',
  'Total due:   1,200 EUR',
  'Marie   runs executors',
  'one',
  '',
];
const docs = await client.post(
  '/count',
  samples.map((text) => ({ text })),
  { requestSize: 2 },
);
for (const doc of docs)
  console.log(
    `${JSON.stringify(doc.text).padEnd(26)} words=${(doc.tags as { words: number }).words}`,
  );
const replicas = new Set(docs.map((d) => (d.tags as { counted_by: number }).counted_by));
console.log(`counted by ${replicas.size} counter replica(s)`);
client.close();
await flow.close();
