import { Worker } from 'node:worker_threads';
import type { Provider } from '@marie/gpu';
import type { Task, WorkerInit } from './model-worker.js';

interface Pending {
  task: Task;
  transfer: ArrayBuffer[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  /** Absent while a replacement loads, or after it failed to. */
  worker?: Worker;
  busy?: Pending & { id: number };
  /** Why the slot has no worker and will get none. */
  dead?: string;
}

/**
 * Worker threads that run the OCR models, each with its own ONNX Runtime sessions: a task
 * (a page's detection, a chunk of line crops, crops to classify) goes to the first idle worker;
 * recognition before detection, so that pages already started finish first. A worker that dies
 * fails its task with the reason and is replaced. Idle workers do not keep the process alive.
 */
export class ModelPool {
  readonly provider: Provider;
  readonly #slots: Slot[];
  readonly #queues: { recognize: Pending[]; other: Pending[] } = { recognize: [], other: [] };
  readonly #init: WorkerInit;
  readonly #file: URL | undefined;
  #ids = 0;
  #closed = false;

  private constructor(
    workers: Worker[],
    provider: Provider,
    init: WorkerInit,
    file: URL | undefined,
  ) {
    this.#slots = workers.map(() => ({}));
    this.provider = provider;
    this.#init = init;
    this.#file = file;
    for (const [i, w] of workers.entries()) this.#attach(this.#slots[i]!, w);
  }

  /**
   * Starts `size` workers and waits until each has loaded the models. `file` replaces the worker
   * module (tests: a worker that dies on cue).
   */
  static async start(size: number, init: WorkerInit, file?: URL): Promise<ModelPool> {
    const started = await Promise.allSettled(
      Array.from({ length: size }, () => ModelPool.#spawn(init, file)),
    );
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const s of started) if (s.status === 'fulfilled') void s.value.worker.terminate();
      throw (failed as PromiseRejectedResult).reason;
    }
    const ok = started.map(
      (s) => (s as PromiseFulfilledResult<{ worker: Worker; provider: Provider }>).value,
    );
    return new ModelPool(
      ok.map((o) => o.worker),
      ok[0]!.provider,
      init,
      file,
    );
  }

  get size(): number {
    return this.#slots.length;
  }

  run<T>(task: Task, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the OCR engine is closed'));
    return new Promise<T>((resolve, reject) => {
      const queue = task.op === 'recognize' ? this.#queues.recognize : this.#queues.other;
      queue.push({ task, transfer, resolve: resolve as (v: unknown) => void, reject });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const gone = new Error('the OCR engine was closed');
    for (const q of [this.#queues.recognize, this.#queues.other])
      for (const p of q.splice(0)) p.reject(gone);
    await Promise.all(this.#slots.map((s) => s.worker?.terminate()));
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      while (slot.worker && !slot.busy) {
        const next = this.#queues.recognize.shift() ?? this.#queues.other.shift();
        if (!next) break;
        const id = ++this.#ids;
        try {
          slot.worker.postMessage({ id, task: next.task }, next.transfer);
        } catch (err) {
          next.reject(new Error(`OCR ${next.task.op}: ${(err as Error).message}`));
          continue;
        }
        slot.busy = { ...next, id };
        slot.worker.ref();
      }
    }
    // Every worker gone for good: what waits would wait forever.
    if (this.#slots.every((s) => s.dead)) {
      const why = new Error(`OCR: no model worker is left (${this.#slots[0]!.dead})`);
      for (const q of [this.#queues.recognize, this.#queues.other])
        for (const p of q.splice(0)) p.reject(why);
    }
  }

  #attach(slot: Slot, worker: Worker): void {
    slot.worker = worker;
    worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const done = slot.busy;
      if (slot.worker !== worker || !done || done.id !== m.id) return;
      slot.busy = undefined;
      worker.unref();
      if (m.ok) done.resolve(m.value);
      else done.reject(new Error(`OCR ${done.task.op}: ${m.error}`));
      this.#dispatch();
    });
    const lost = (why: string) => {
      if (slot.worker !== worker) return; // 'exit' after 'error', or already replaced
      slot.worker = undefined;
      const done = slot.busy;
      slot.busy = undefined;
      done?.reject(new Error(`OCR ${done.task.op}: the model worker ${why}`));
      if (this.#closed) return;
      // A fresh worker takes its place; until it has loaded, the others carry on.
      ModelPool.#spawn(this.#init, this.#file).then(
        ({ worker: fresh }) => {
          if (this.#closed) return void fresh.terminate();
          this.#attach(slot, fresh);
          this.#dispatch();
        },
        (err: Error) => {
          slot.dead = err.message;
          this.#dispatch();
        },
      );
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
  }

  static #spawn(init: WorkerInit, module?: URL): Promise<{ worker: Worker; provider: Provider }> {
    // From the TypeScript sources (tests, tools run with tsx) the worker loads them through tsx.
    const source = import.meta.url.endsWith('.ts');
    const file =
      module ?? new URL(source ? './model-worker.ts' : './model-worker.js', import.meta.url);
    const worker = new Worker(file, {
      workerData: init,
      ...(source ? { execArgv: ['--import', 'tsx', '--conditions=@marie/source'] } : {}),
    });
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        void worker.terminate();
        reject(new Error(`the OCR model worker did not start: ${err.message}`));
      };
      worker.once('error', fail);
      worker.once('exit', (code) => fail(new Error(`exited with code ${code}`)));
      worker.once('message', (m: { ready: boolean; provider?: Provider; error?: string }) => {
        worker.removeAllListeners('error');
        worker.removeAllListeners('exit');
        if (m.ready) resolve({ worker, provider: m.provider! });
        else fail(new Error(m.error));
      });
    });
  }
}
