// A worker thread of a ModelPool (pool.ts): its own ONNX Runtime sessions of the three models,
// one task at a time. onnxruntime-node's run() holds the thread that calls it, so the models run
// here, off the caller's event loop, and as many pages or crop chunks at once as there are workers.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession, type Provider } from '@marie/gpu';
import { directions } from './classify.js';
import { type DetectOptions, detect } from './detect.js';
import { cropQuad, type RgbImage } from './image.js';
import { recognize } from './recognize.js';

export interface WorkerInit {
  paths: { det: string; rec: string; cls: string };
  keys: string[];
  providers?: Provider[];
  threads: number;
}

export type Task =
  | { op: 'detect'; image: RgbImage; options: DetectOptions }
  | { op: 'recognize'; crops: RgbImage[]; batchSize: number }
  | { op: 'directions'; crops: RgbImage[] };

const port = parentPort!;
const init = workerData as WorkerInit;

async function start() {
  const ort = await import('onnxruntime-node');
  const so = {
    ...(init.providers ? { providers: init.providers } : {}),
    intraOpNumThreads: init.threads,
  };
  const [det, rec, cls] = await Promise.all([
    createSession(init.paths.det, so),
    createSession(init.paths.rec, so),
    createSession(init.paths.cls, so),
  ]);
  const run = async (task: Task): Promise<{ value: unknown; transfer: ArrayBuffer[] }> => {
    switch (task.op) {
      case 'detect': {
        const found = await detect(ort, det.session, task.image, task.options);
        const crops = found.map(({ quad }) => cropQuad(task.image, quad, 48));
        return {
          value: { found, crops },
          transfer: crops.map((c) => c.data.buffer as ArrayBuffer),
        };
      }
      case 'recognize': {
        const stats = { rounds: 0, runs: 0, crops: 0 };
        const results = await recognize(ort, rec.session, init.keys, task.crops, {
          batchSize: task.batchSize,
          stats,
        });
        return { value: { results, runs: stats.runs }, transfer: [] };
      }
      case 'directions':
        // Two floats a crop: copied back (ONNX Runtime owns the output's memory).
        return { value: await directions(ort, cls.session, task.crops), transfer: [] };
    }
  };
  port.on('message', async ({ id, task }: { id: number; task: Task }) => {
    try {
      const { value, transfer } = await run(task);
      port.postMessage({ id, ok: true, value }, transfer);
    } catch (err) {
      port.postMessage({ id, ok: false, error: (err as Error)?.message ?? String(err) });
    }
  });
  port.postMessage({ ready: true, provider: det.provider });
}

start().catch((err: unknown) =>
  port.postMessage({ ready: false, error: (err as Error)?.message ?? String(err) }),
);
