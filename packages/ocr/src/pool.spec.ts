import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { modelPaths } from './engine.js';
import { ModelPool } from './pool.js';

const DYING = new URL('../test/dying-worker.ts', import.meta.url);
const init = { paths: modelPaths(), keys: [], threads: 1 };
const image = { data: new Uint8Array(3), width: 1, height: 1 };
let pool: ModelPool | undefined;
afterEach(() => pool?.close());

describe('ModelPool', () => {
  it('fails the task of a worker that dies with the reason, and a fresh worker takes its place', async () => {
    pool = await ModelPool.start(1, init, DYING);
    const doomed = pool.run({ op: 'detect', image, options: { die: true } as never });
    const queued = pool.run<{ op: string }>({ op: 'directions', crops: [] });
    await expect(doomed).rejects.toThrow('OCR detect: the model worker exited with code 7');
    // The task queued behind it runs on the replacement.
    await expect(queued).resolves.toMatchObject({ op: 'directions' });
    await expect(pool.run({ op: 'detect', image, options: {} })).resolves.toMatchObject({
      found: [],
    });
  });

  it('takes recognition before detection, and rejects what waits when closed', async () => {
    pool = await ModelPool.start(1, init, DYING);
    const order: string[] = [];
    const first = pool.run({ op: 'detect', image, options: {} }).then(() => order.push('a'));
    const det = pool.run({ op: 'detect', image, options: {} }).then(() => order.push('det'));
    const rec = pool
      .run({ op: 'recognize', crops: [], batchSize: 1 })
      .then(() => order.push('rec'));
    await Promise.all([first, det, rec]);
    expect(order).toEqual(['a', 'rec', 'det']);
    const busy = pool.run({ op: 'detect', image, options: { hang: true } as never });
    const waiting = pool.run({ op: 'detect', image, options: {} });
    const outcomes = Promise.allSettled([busy, waiting]);
    await pool.close();
    const [b, w] = await outcomes;
    expect((w as PromiseRejectedResult).reason.message).toBe('the OCR engine was closed');
    expect((b as PromiseRejectedResult).reason.message).toMatch(/the model worker exited/);
    await expect(pool.run({ op: 'directions', crops: [] })).rejects.toThrow('closed');
  });

  it('does not keep the process alive once its work is done', async () => {
    // A real child process with two workers, one of which never had a task, and no close().
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=@marie/source',
        fileURLToPath(new URL('../test/pool-exits.ts', import.meta.url)),
      ],
      { timeout: 30_000 },
    );
    expect(stdout.trim()).toBe('done');
  }, 40_000);

  it('says why a worker could not start', async () => {
    await expect(
      ModelPool.start(2, init, new URL('../test/no-such-worker.ts', import.meta.url)),
    ).rejects.toThrow(/the OCR model worker did not start: .*no-such-worker/);
  });
});
