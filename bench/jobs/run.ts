// bench/jobs: jobs/s and queue latency (submit -> started, p50/p99 from pg-boss's own created_on
// and started_on) for three ways to run the same no-op job, in one run on one Postgres:
//   raw      pg-boss alone: send(), and consumers looping fetch() and complete() (WORK=1 adds
//            pg-boss's work(), which waits its polling interval after every job)
//   library  @marie/jobs: Jobs.submit (the index row in the same transaction) and a JobWorker
//   gateway  end to end: POST /api/v1/jobs on a Flow's HTTP gateway, a JobService worker running
//            each job through the Flow to a no-op executor process over gRPC, Marie's job
//            records kept, the answer stored as the result (and once more without the records)
// Each row submits JOBS jobs with WINDOW submissions in flight while its workers take them,
// CONCURRENCY at a time; the clock stops when the last job is completed in pg-boss's table.
// Run by hand after `npm run build`: npm run bench:jobs (DATABASE_URL: an admin URL)
import { Agent, request } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Flow } from '@marie/flow';
import { JobService, Jobs, JobWorker, parseJobsConfig, processorTarget } from '@marie/jobs';
import pg from 'pg';
import { PgBoss } from 'pg-boss';

const N = Number(process.env.JOBS ?? 2000);
const WINDOW = Number(process.env.WINDOW ?? 64);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const ADMIN = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NOOP_DIR = join(import.meta.dirname, '..', 'grpc-overhead');
const dbName = `marie_bench_jobs_${process.pid}`;
const url = (() => {
  const u = new URL(ADMIN);
  u.pathname = `/${dbName}`;
  return u.href;
})();

const admin = new pg.Client({ connectionString: ADMIN });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const db = new pg.Pool({ connectionString: url, max: 2 });

interface Row {
  name: string;
  jobsPerSecond: number;
  p50: number;
  p99: number;
  /** CPU of this process (submitting and working, not Postgres or executors) per job. */
  cpuMsPerJob: number;
}

/** Submits N jobs, WINDOW in flight, and waits until pg-boss has all of them completed. */
async function measure(name: string, queue: string, submit: (i: number) => Promise<unknown>) {
  const t = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < N) await submit(next++);
    }),
  );
  for (;;) {
    const r = await db.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`,
      [queue],
    );
    if (r.rows[0].n >= N) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  const lat = await db.query(
    `SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (
            ORDER BY extract(epoch FROM started_on - created_on) * 1000) AS p
       FROM pgboss.job WHERE name = $1`,
    [queue],
  );
  const [p50, p99] = lat.rows[0].p as number[];
  const row: Row = {
    name,
    jobsPerSecond: N / seconds,
    p50: p50!,
    p99: p99!,
    cpuMsPerJob: (used.user + used.system) / 1000 / N,
  };
  console.error(`${name}: ${row.jobsPerSecond.toFixed(0)} jobs/s`);
  return row;
}

const workOptions = {
  batchSize: 1,
  localConcurrency: CONCURRENCY,
  pollingIntervalSeconds: 0.5,
} as const;

/**
 * pg-boss's own loop: send(), and CONCURRENCY consumers each fetch() one job, complete() it, and
 * fetch again at once (10 ms after an empty fetch): the floor of any worker built on it.
 */
async function raw(): Promise<Row> {
  const boss = new PgBoss({ connectionString: url, max: 10 });
  (boss as unknown as NodeJS.EventEmitter).on('error', () => {});
  await boss.start();
  await boss.createQueue('raw');
  let stop = false;
  const consumers = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) {
      const [job] = await boss.fetch('raw', { batchSize: 1 });
      if (job) await boss.complete('raw', job.id, { ok: true });
      else await new Promise((r) => setTimeout(r, 10));
    }
  });
  const row = await measure('raw pg-boss loop', 'raw', (i) =>
    boss.send('raw', { i }, { retryLimit: 2, retryDelay: 2, retryBackoff: true }),
  );
  stop = true;
  await Promise.all(consumers);
  await boss.stop({ graceful: true, timeout: 5000 });
  return row;
}

/** pg-boss's work() as it comes: each of its CONCURRENCY workers waits its interval after a job. */
async function rawWork(): Promise<Row> {
  const boss = new PgBoss({ connectionString: url, max: 10 });
  (boss as unknown as NodeJS.EventEmitter).on('error', () => {});
  await boss.start();
  await boss.createQueue('work');
  await boss.work('work', workOptions, async () => ({ ok: true }));
  const row = await measure('pg-boss work()', 'work', (i) =>
    boss.send('work', { i }, { retryLimit: 2, retryDelay: 2, retryBackoff: true }),
  );
  await boss.stop({ graceful: true, timeout: 5000 });
  return row;
}

async function library(): Promise<Row> {
  const jobs = new Jobs({ connectionString: url, max: 10 });
  await jobs.start();
  const worker = new JobWorker(jobs, {
    queues: { library: { concurrency: CONCURRENCY } },
    run: async () => ({ results: {}, docs: [] }),
  });
  await worker.start();
  const row = await measure('@marie/jobs', 'library', (i) =>
    jobs.submit({ queue: 'library', ref_id: `r${i}` }),
  );
  await worker.stop();
  await jobs.stop({ timeoutMs: 5000 });
  return row;
}

async function gateway(records: boolean): Promise<Row> {
  const queue = records ? 'noop' : 'noop.bare';
  const service = await JobService.open(
    parseJobsConfig({ database: url, queues: { [queue]: CONCURRENCY }, ui: false, records }),
  );
  const flow = new Flow({
    protocol: 'http',
    host: '127.0.0.1',
    httpPlugins: service.plugins(),
  }).add({ name: 'noop', uses: 'noop.yml', cwd: NOOP_DIR, env: { MARIE_LOG_LEVEL: 'warn' } });
  await flow.start();
  await service.startWorkers(processorTarget(flow.gateway!));
  const http = flow.addresses[0]!;
  const name = records ? 'gateway end to end' : 'gateway, no records';
  // The load comes from node:http on kept-alive sockets (as autocannon's does): fetch's own cost
  // would be counted against the gateway on these two cores.
  const agent = new Agent({ keepAlive: true, maxSockets: WINDOW });
  const { hostname, port } = new URL(http);
  const row = await measure(name, queue, (i) => {
    const body = JSON.stringify({ endpoint: '/noop', queue, ref_id: `r${i}`, parameters: {} });
    return new Promise<void>((resolve, reject) => {
      const req = request(
        {
          agent,
          hostname,
          port,
          method: 'POST',
          path: '/api/v1/jobs',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c;
          });
          res.on('end', () =>
            res.statusCode === 202
              ? resolve()
              : reject(new Error(`submit: ${res.statusCode} ${text}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  });
  agent.destroy();
  await service.stopWorkers();
  await flow.close();
  await service.stop();
  return row;
}

let rows: Row[];
try {
  rows =
    process.env.ONLY === 'gateway'
      ? [await gateway(true)]
      : [
          await raw(),
          ...(process.env.WORK ? [await rawWork()] : []),
          await library(),
          await gateway(true),
          await gateway(false),
        ];
} finally {
  await db.end();
  // pg-boss's pools end after its stop() resolves: wait (up to 5 s) for the last connection to
  // leave, or FORCE terminates one still idle in a pool and its 'error' event ends this process
  // before the table is printed (one run of two here, 2026-12-07).
  for (let i = 0; i < 50; i++) {
    const { rows } = await admin.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
      [dbName],
    );
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}

console.log(
  `jobs: ${N} no-op jobs per row, ${WINDOW} submissions in flight, workers ${CONCURRENCY} at a time, node ${process.version}, ${cpus().length} CPUs`,
);
console.log('');
const raw0 = rows[0]!;
const pad = (s: string, n: number) => s.padEnd(n);
console.log(
  `${pad('row', 22)}${pad('jobs/s', 9)}${pad('x raw', 8)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}cpu ms/job here`,
);
for (const r of rows)
  console.log(
    `${pad(r.name, 22)}${pad(r.jobsPerSecond.toFixed(0), 9)}${pad((r.jobsPerSecond / raw0.jobsPerSecond).toFixed(2), 8)}${pad(r.p50.toFixed(1), 9)}${pad(r.p99.toFixed(1), 9)}${r.cpuMsPerJob.toFixed(2)}`,
  );
console.log('');
console.log('targets: gateway end to end >= 0.8x raw pg-boss, and >= 300 jobs/s on 2 cores');
