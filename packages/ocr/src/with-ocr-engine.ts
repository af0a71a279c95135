import { ErrorCode, type Executor, type ExecutorArgs, MarieError } from '@marie/core';
import type { Provider } from '@marie/gpu';
import { OcrEngine, type OcrEngineOptions } from './engine.js';

type ExecutorConstructor = abstract new (...args: any[]) => Executor;

/** The engine settings an OCR executor takes in its `with:`. */
export interface OcrEngineArgs {
  /** ONNX Runtime threads per operator (per model worker: 1 by default). */
  threads?: number;
  /**
   * Model worker threads (default: one per core on CPU, 0 on CUDA): pages and each page's lines
   * are read on them in parallel, off the executor's event loop.
   */
  workers?: number;
  /** Execution providers by preference (`['cuda', 'cpu']`). */
  providers?: Provider[];
  /**
   * Line crops per recognition batch (8 on CUDA, 1 on CPU): crops of every page in flight,
   * concurrent requests included, are batched together; 1 turns batching off.
   */
  batch_size?: number;
}

/** What `withOcrEngine` adds to an executor class. */
export interface OcrEngineMixin {
  /**
   * The PP-OCRv4 engine, loading from the moment the executor is made: `open()` waits for it (a
   * load that fails stops startup with its reason), `close()` releases it.
   */
  readonly engine: Promise<OcrEngine>;
}

/**
 * An executor class with an OcrEngine (the text-extraction and page-orientation apps): it takes
 * the engine's settings from its `with:` (`threads`, `workers`, `providers`, `batch_size`,
 * checked, an error naming the key), starts loading the models at once, and ties the engine's
 * life to the executor's `open()` and `close()`. `fixed` are engine options of the class itself
 * (page orientation detects on smaller pages: `{ maxSide: 960 }`).
 *
 * ```ts
 * class Reader extends withOcrEngine(MarieExecutor) {
 *   @requests({ on: '/read' })
 *   async read(docs: DocList<PageDoc>) { const engine = await this.engine; ... }
 * }
 * ```
 */
export function withOcrEngine<TBase extends ExecutorConstructor>(
  Base: TBase,
  fixed: OcrEngineOptions = {},
): WithOcrEngineClass<TBase> {
  abstract class WithOcrEngine extends Base implements OcrEngineMixin {
    readonly engine: Promise<OcrEngine>;

    constructor(...args: any[]) {
      const { threads, workers, providers, batch_size, ...rest } = (args[0] ??
        {}) as OcrEngineArgs & ExecutorArgs;
      wholeNumber('with.batch_size', batch_size, 1);
      wholeNumber('with.workers', workers, 0);
      wholeNumber('with.threads', threads, 1);
      super(rest, ...args.slice(1));
      this.engine = OcrEngine.create({
        ...fixed,
        ...(threads ? { threads } : {}),
        ...(workers !== undefined ? { workers } : {}),
        ...(providers ? { providers } : {}),
        ...(batch_size ? { batchSize: batch_size } : {}),
      });
      this.engine.catch(() => {}); // surfaced by open() and by the first request
    }

    override async open(): Promise<void> {
      await super.open();
      await this.engine;
    }

    override async close(): Promise<void> {
      try {
        await super.close();
      } finally {
        await (await this.engine.catch(() => undefined))?.close();
      }
    }
  }
  return WithOcrEngine as unknown as WithOcrEngineClass<TBase>;
}

/**
 * The class `withOcrEngine` returns: one constructor taking the base's arguments plus the
 * engine's, the base's statics, instances with the engine.
 */
export type WithOcrEngineClass<TBase extends ExecutorConstructor> = (abstract new (
  args?: ConstructorParameters<TBase>[0] & OcrEngineArgs,
) => InstanceType<TBase> & OcrEngineMixin) &
  Pick<TBase, keyof TBase>;

function wholeNumber(field: string, v: unknown, min: number): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min))
    throw new MarieError(
      ErrorCode.InvalidArgument,
      `${field}: ${JSON.stringify(v)} is not a whole number >= ${min}`,
      { field },
    );
}
