// bench/dags: DAGs/s, unblock latency and dispatch latency for a 4-node no-op plan (a -> b, a -> c,
// b + c -> d), in one run on one Postgres, beside pg-boss's own flows for the same shape:
//   raw        pg-boss alone: flow() of the 4 jobs, consumers looping fetch() and complete();
//              children are released by pg-boss's resolver (flowIntervalSeconds: 1, its minimum)
//   raw+force  the same, each consumer calling resolveFlow() after every complete (a forced pass)
//   dags       @marie/pipelines: Dags.submit (pre-flight, node rows, flow() in one transaction) and
//              a DagWorker; a run's end releases its children in the same transaction
// Each row starts DAGS DAGs (all in flight at once: the 1,000-in-flight bound) and stops the
// clock when the last one ended. Unblock latency: a child's start minus its last parent's end;
// dispatch latency: a root's start minus its DAG's submit. Peak RSS of this process and peak
// Postgres connections of the bench database are sampled every 100 ms.
// Run by hand after `npm run build`: npm run bench:dags (DATABASE_URL: an admin URL)
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Jobs } from '@marie/jobs';
import { Dags, DagWorker, plan } from '@marie/pipelines';
import pg from 'pg';
import { PgBoss } from 'pg-boss';

const N = Number(process.env.DAGS ?? 1000);
const SLOTS = Number(process.env.SLOTS ?? 16);
const ADMIN = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

interface Row {
  name: string;
  dagsPerSecond: number;
  /** Seconds until every DAG was submitted (workers already taking them). */
  submittedIn: number;
  unblock: number[];
  dispatch: number[];
  rssMb: number;
  connections: number;
  /** CPU of this process (submitting and working, not Postgres) per DAG, ms. */
  cpuMs: number;
  /** CPU of the whole machine (this process, Postgres, the rest) per DAG, ms: /proc/stat. */
  machineMs: number;
}

/** Busy CPU time of the machine so far, ms (every core: user, nice, system, irq, softirq). */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as number[];
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1000) / 100;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
};

async function freshDb(tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `marie_bench_dags_${tag}_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return {
    url: u.href,
    drop: async () => {
      const a = new pg.Client({ connectionString: ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/** Samples this process's RSS and the database's connections until stopped; peaks. */
function sampler(url: string) {
  const db = new pg.Client({ connectionString: url });
  let rss = 0;
  let conns = 0;
  let on = true;
  const done = (async () => {
    await db.connect();
    while (on) {
      rss = Math.max(rss, process.memoryUsage().rss);
      const r = await db.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()',
      );
      conns = Math.max(conns, r.rows[0].n);
      await new Promise((res) => setTimeout(res, 100));
    }
    await db.end();
  })();
  return async () => {
    on = false;
    await done;
    return { rssMb: rss / 2 ** 20, connections: conns };
  };
}

async function raw(force: boolean): Promise<Row> {
  const { url, drop } = await freshDb(force ? 'force' : 'raw');
  const boss = new PgBoss({ connectionString: url, max: 10, flowIntervalSeconds: 1 });
  (boss as unknown as NodeJS.EventEmitter).on('error', () => {});
  await boss.start();
  await boss.createQueue('noop');
  const stop = sampler(url);
  const t = performance.now();
  const cpu = process.cpuUsage();
  const busy = machineBusy();
  const submitted: number[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < N; i += 16) {
        submitted[i] = Date.now();
        await boss.flow([
          { ref: 'a', name: 'noop', data: { i } },
          { ref: 'b', name: 'noop', data: { i }, dependsOn: ['a'] },
          { ref: 'c', name: 'noop', data: { i }, dependsOn: ['a'] },
          { ref: 'd', name: 'noop', data: { i }, dependsOn: ['b', 'c'] },
        ]);
      }
    }),
  );
  const submittedIn = (performance.now() - t) / 1000;
  let completed = 0;
  const total = N * 4;
  await Promise.all(
    Array.from({ length: SLOTS }, async () => {
      while (completed < total) {
        const [job] = await boss.fetch('noop');
        if (!job) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        await boss.complete('noop', job.id);
        completed++;
        if (force) await boss.resolveFlow();
      }
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  const machineMs = (machineBusy() - busy) / N;
  const peaks = await stop();
  // From pg-boss's own table: a child's start minus its parents' last completion.
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const lat = await db.query(
    `SELECT EXTRACT(EPOCH FROM (c.started_on - max(p.completed_on))) * 1000 AS ms
     FROM pgboss.job c JOIN pgboss.job_dependency d ON d.child_id = c.id
     JOIN pgboss.job p ON p.id = d.parent_id GROUP BY c.id, c.started_on`,
  );
  const roots = await db.query(
    `SELECT EXTRACT(EPOCH FROM (j.started_on - j.created_on)) * 1000 AS ms FROM pgboss.job j
     WHERE NOT EXISTS (SELECT 1 FROM pgboss.job_dependency d WHERE d.child_id = j.id)`,
  );
  await db.end();
  await boss.stop({ graceful: false, timeout: 2000 });
  await drop();
  return {
    name: force ? 'raw+force' : 'raw',
    dagsPerSecond: N / seconds,
    submittedIn,
    cpuMs: (used.user + used.system) / 1000 / N,
    machineMs,
    unblock: lat.rows.map((r) => Number(r.ms)),
    dispatch: roots.rows.map((r) => Number(r.ms)),
    ...peaks,
  };
}

async function dags(): Promise<Row> {
  const { url, drop } = await freshDb('dags');
  const jobs = new Jobs({ connectionString: url, max: 10 });
  const d = new Dags({
    jobs,
    max: Number(process.env.POOL ?? 8),
    plans: [
      plan('four')
        .executor('a', 'noop://x')
        .executor('b', 'noop://x', { needs: ['a'] })
        .executor('c', 'noop://x', { needs: ['a'] })
        .executor('d', 'noop://x', { needs: ['b', 'c'] })
        .build(),
    ],
  });
  await d.start();
  const worker = new DagWorker(d, {
    executors: { noop: { slots: SLOTS, target: { post: async () => [] } } },
    control: 0,
  });
  await worker.start();
  const stop = sampler(url);
  const t = performance.now();
  const cpu = process.cpuUsage();
  const busy = machineBusy();
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < N; i += 16) await d.submit({ plan: 'four' });
    }),
  );
  const submittedIn = (performance.now() - t) / 1000;
  // Done when no DAG is live (every one was submitted above): counted on the live DAGs' index.
  for (;;) {
    const r = await d.pool.query(
      `SELECT count(*)::int AS n FROM pgboss.marie_dag WHERE state IN ('pending', 'running')`,
    );
    if (r.rows[0].n === 0) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  const machineMs = (machineBusy() - busy) / N;
  const peaks = await stop();
  const lat = await d.pool.query(
    `SELECT EXTRACT(EPOCH FROM (c.started_on - max(p.ended_on))) * 1000 AS ms
     FROM pgboss.marie_dag_node c JOIN pgboss.marie_dag_node p
       ON p.dag_id = c.dag_id AND p.node_id = ANY(c.needs)
     GROUP BY c.dag_id, c.node_id, c.started_on`,
  );
  const roots = await d.pool.query(
    `SELECT EXTRACT(EPOCH FROM (n.started_on - g.created_on)) * 1000 AS ms
     FROM pgboss.marie_dag_node n JOIN pgboss.marie_dag g ON g.id = n.dag_id
     WHERE cardinality(n.needs) = 0`,
  );
  const failed = await d.pool.query(
    `SELECT count(*)::int AS n FROM pgboss.marie_dag WHERE state <> 'completed'`,
  );
  if (failed.rows[0].n) throw new Error(`${failed.rows[0].n} DAGs did not complete`);
  if (process.env.STATS)
    console.table(
      (
        await d.pool.query(
          `select relname, n_tup_upd, n_tup_hot_upd, n_tup_ins from pg_stat_user_tables where schemaname='pgboss' order by n_tup_upd desc limit 8`,
        )
      ).rows,
    );
  await worker.stop({ timeoutMs: 2000 });
  await d.stop();
  await jobs.stop({ graceful: false, timeoutMs: 2000 });
  await drop();
  return {
    name: 'dags',
    dagsPerSecond: N / seconds,
    submittedIn,
    cpuMs: (used.user + used.system) / 1000 / N,
    machineMs,
    unblock: lat.rows.map((r) => Number(r.ms)),
    dispatch: roots.rows.map((r) => Number(r.ms)),
    ...peaks,
  };
}

// ROWS=dags (a comma list) runs some rows only (a profile); ratios need the raw row first.
// ROUNDS (default 3): raw and dags run in turn that many times (raw+force once, first), so that a
// machine whose speed drifts (a shared VM) weighs on both alike; each round's ratio is printed and
// the median of them is the result. Round 0 (WARMUP=0 leaves it out) is a warm-up, printed and
// not counted: a process's first thousand DAGs also pay for compiling the code (tsx, the JIT) and
// each connection's first plans, one-time costs that fell on the first dags row (0.61-0.65x
// where the rounds after it gave 0.74-0.87x).
const only = process.env.ROWS?.split(',');
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WARMUP = process.env.WARMUP !== '0';
const want = (name: string) => !only || only.includes(name);
const rows: Row[] = [];
if (want('raw+force')) rows.push(await raw(true));
const ratios: number[] = [];
/** The counted raw rows (not raw+force, not the warm-up): the median of them is the base. */
const raws: Row[] = [];
for (let round = WARMUP ? 0 : 1; round <= ROUNDS; round++) {
  const a = want('raw') ? await raw(false) : undefined;
  const b = want('dags') ? await dags() : undefined;
  const tag = round === 0 ? ' #0 w' : ROUNDS > 1 ? ` #${round}` : '';
  for (const r of [a, b]) if (r) rows.push({ ...r, name: `${r.name}${tag}` });
  if (a && round > 0) raws.push(a);
  if (a && b && round > 0) ratios.push(b.dagsPerSecond / a.dagsPerSecond);
}
const base = raws.length
  ? raws.sort((x, y) => x.dagsPerSecond - y.dagsPerSecond)[raws.length >> 1]!
  : rows[0]!;
console.log(
  `bench/dags: ${N} DAGs of 4 no-op nodes, all in flight, ${SLOTS} slots, ${ROUNDS} rounds; Node ${process.version}, ${cpus()[0]?.model} x${cpus().length}`,
);
console.log(
  'row           DAGs/s  x raw*   submitted s   unblock p50/p99 ms   dispatch p50/p99 ms   peak RSS MB   peak pg conns   CPU ms/DAG   machine CPU ms/DAG',
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(12)} ${r.dagsPerSecond.toFixed(1).padStart(7)} ${(r.dagsPerSecond / base.dagsPerSecond).toFixed(2).padStart(7)}x ${r.submittedIn.toFixed(1).padStart(13)} ${`${pct(r.unblock, 50).toFixed(1)}/${pct(r.unblock, 99).toFixed(1)}`.padStart(20)} ${`${pct(r.dispatch, 50).toFixed(0)}/${pct(r.dispatch, 99).toFixed(0)}`.padStart(21)} ${r.rssMb.toFixed(0).padStart(13)} ${String(r.connections).padStart(15)} ${r.cpuMs.toFixed(2).padStart(12)} ${r.machineMs.toFixed(2).padStart(20)}`,
  );
console.log(
  `* x raw: against the median raw row of this run${WARMUP ? '; #0 w: the warm-up round, not counted' : ''}`,
);
if (ratios.length)
  console.log(
    `dags / raw, round by round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${pct(ratios, 50).toFixed(2)}x`,
  );
