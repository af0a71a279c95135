/** Runs tasks one at a time, in the order they were queued. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    // The queue moves on whether the task failed or not; the caller sees the failure.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
