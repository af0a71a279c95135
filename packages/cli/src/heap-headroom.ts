import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { UsageError } from './errors.js';

/** Below this much live heap, a serving process lets the heap grow 4x between major GCs. */
const SMALL_HEAP_BYTES = 64 * 1024 * 1024;
const CHECK_MS = 2000;

/**
 * Keeps V8 from running major GCs back to back in a serving process with a small heap.
 *
 * V8 starts incremental marking as soon as the old generation's headroom (its limit minus what
 * it holds) is smaller than the young generation's capacity, which grows to 32 MB when requests
 * allocate quickly. A runtime's heap is small (15-25 MB before an executor loads a model) and V8
 * sets the limit at about twice the live size, so under load it marks all the time: measured on
 * `marie executor` with 200 KB requests, 1 in flight, V8's worker threads spent ~850 us of CPU per
 * request (a raw grpc-js echo: ~100 us) and incremental marking restarted every ~17 requests.
 * A 4x growing factor (the largest V8 itself picks for small heaps) while the heap is under 64 MB
 * gives it the headroom; past that V8's own heuristics are left alone. The factor is read each
 * time V8 sets its limits, so changing it at run time is safe. MARIE_HEAP_GROWING_PERCENT sets
 * the percentage (0 leaves V8 alone), as does --heap-growing-percent given to node itself.
 */
export function keepHeapHeadroom(env: NodeJS.ProcessEnv = process.env): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return;
  const setting = env.MARIE_HEAP_GROWING_PERCENT ?? '300';
  if (!/^\d+$/.test(setting))
    throw new UsageError(`MARIE_HEAP_GROWING_PERCENT must be a whole number, got "${setting}"`);
  const percent = Number(setting);
  if (percent === 0) return;
  let current = -1;
  const adjust = () => {
    const want = getHeapStatistics().used_heap_size < SMALL_HEAP_BYTES ? percent : 0;
    if (want === current) return;
    current = want;
    setFlagsFromString(`--heap-growing-percent=${want}`);
  };
  adjust();
  setInterval(adjust, CHECK_MS).unref();
}
