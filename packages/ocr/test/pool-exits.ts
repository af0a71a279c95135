// Run by pool.spec.ts as a child process: a pool of two workers, one task on one of them, and no
// close(). The process must end by itself once its work is done (idle workers are unref'd).
import { modelPaths } from '../src/engine.js';
import { ModelPool } from '../src/pool.js';

const pool = await ModelPool.start(
  2,
  { paths: modelPaths(), keys: [], threads: 1 },
  new URL('./dying-worker.ts', import.meta.url),
);
await pool.run({ op: 'directions', crops: [] });
console.log('done');
