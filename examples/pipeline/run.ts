// Starts the example Flow on this machine (no external service), posts sample documents through
// its gateway, prints what came back and what was stored, and stops everything.
import { join } from 'node:path';
import { Client } from '@marie/client';
import { loadFlow } from '@marie/flow';

// Executors' workspaces (the archive step's embedded Postgres among them) live here.
process.env.MARIE_WORKSPACE ??= join(process.cwd(), '.marie', 'workspace');
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
const jobId = `example-${Date.now()}`;
const docs = await client.post(
  '/count',
  samples.map((text) => ({ text })),
  { requestSize: 5, parameters: { job_id: jobId, ref_id: jobId } },
);
for (const doc of docs)
  console.log(
    `${JSON.stringify(doc.text).padEnd(26)} words=${(doc.tags as { words: number }).words}`,
  );
const replicas = new Set(docs.map((d) => (d.tags as { counted_by: number }).counted_by));
console.log(`counted by ${replicas.size} counter replica(s)`);
const [job] = await client.post('/archive/job', [], { parameters: { of: jobId, ref_id: jobId } });
const { rows, target } = job!.tags as { rows: number; target: string };
console.log(`job ${job!.text}: ${rows} documents stored in ${target}`);
client.close();
await flow.close();
