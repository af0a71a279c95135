// A stand-in for the model worker (src/model-worker.ts) that speaks its protocol and exits on cue:
// a `detect` task with `options.die` ends the thread with exit code 7, as a crash in native code
// would; with `options.hang` it never answers (a long page). The pool spec uses it to check that the task fails with the reason and a fresh worker
// takes the dead one's place.
import { parentPort } from 'node:worker_threads';

const port = parentPort!;
port.on(
  'message',
  ({
    id,
    task,
  }: {
    id: number;
    task: { op: string; options?: { die?: boolean; hang?: boolean } };
  }) => {
    if (task.op === 'detect' && task.options?.die) process.exit(7);
    if (task.options?.hang) return;
    port.postMessage({ id, ok: true, value: { found: [], crops: [], op: task.op } });
  },
);
port.postMessage({ ready: true, provider: 'cpu' });
