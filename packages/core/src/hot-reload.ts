import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { BatchEvent } from './batcher.js';
import type { DataRequest, SingleDocumentRequest } from './data-request.js';
import { createLogger, type Logger } from './logger.js';
import { DelegatingProcessor, type Processor } from './processor.js';
import type { HandleOptions } from './request-context.js';

type Health = Readonly<{ serving: boolean; reason: string }>;

/** What a reload loads: an opened processor (an executor's handler) and the files it came from. */
export interface Loaded {
  processor: Processor;
  files: readonly string[];
}

export interface HotReloaderOptions {
  /** Loads the executor afresh, opened (its `open()` done), with the files to watch. */
  load: () => Promise<Loaded>;
  /** Quiet time after the last change before reloading (editors write in several steps): 150 ms. */
  debounceMs?: number;
  /** Told of every reload: the files that changed and whether it took. */
  onReload?: (outcome: { ok: boolean; changed: string[]; error?: Error }) => void;
  logger?: Logger;
}

/**
 * Serves an executor that reloads when its modules or YAML change (`marie executor --reload`,
 * Jina's `reload`): a change loads the new class into a new handler and opens it; only then does
 * traffic switch to it, and the old one is closed once the requests it was serving have finished
 * (its pending batches flushed). A load that fails (a syntax error, a throwing constructor or
 * `open()`) leaves the old one serving and says why. Requests in flight never see a switch.
 *
 * Endpoints added by a reload are served over gRPC, WebSocket and HTTP `POST /post`; the HTTP
 * server's per-endpoint routes and OpenAPI document are those of the first load.
 */
export class HotReloader extends DelegatingProcessor {
  #current: Processor;
  #files: readonly string[];
  readonly #options: HotReloaderOptions;
  readonly #logger: Logger;
  readonly #inFlight = new Map<Processor, number>();
  readonly #drained = new Map<Processor, () => void>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #healthListeners = new Set<(h: Health) => void>();
  readonly #batchListeners = new Set<(e: BatchEvent) => void>();
  #unsubscribe: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #changed = new Set<string>();
  #reloading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** Reloads that took, for tests and `/status`. */
  generation = 0;

  private constructor(first: Loaded, options: HotReloaderOptions) {
    super();
    this.#current = first.processor;
    this.#files = first.files;
    this.#options = options;
    this.#logger = options.logger ?? createLogger('reload');
  }

  /** Loads the first version and starts watching its files. */
  static async start(options: HotReloaderOptions): Promise<HotReloader> {
    const reloader = new HotReloader(await options.load(), options);
    reloader.#subscribe();
    reloader.#watch();
    return reloader;
  }

  /** The handler serving now. */
  get current(): Processor {
    return this.#current;
  }

  protected override get target(): Processor {
    return this.#current;
  }

  get files(): readonly string[] {
    return this.#files;
  }

  // Requests are counted per version: the old one closes once its last request is answered.
  override handle(request: DataRequest<any>, options?: HandleOptions): Promise<DataRequest<any>> {
    const p = this.#enter();
    return p.handle(request, options).finally(() => this.#leave(p));
  }

  override handleMany(
    requests: readonly DataRequest<any>[],
    options?: HandleOptions,
  ): Promise<DataRequest<any>> {
    const p = this.#enter();
    return p.handleMany(requests, options).finally(() => this.#leave(p));
  }

  override async *streamDoc(
    request: SingleDocumentRequest<any>,
    options?: HandleOptions,
  ): AsyncGenerator<SingleDocumentRequest<any>> {
    const p = this.#enter();
    try {
      yield* p.streamDoc(request, options);
    } finally {
      this.#leave(p);
    }
  }

  // Listeners follow the version serving now, across reloads.
  override onHealthChange(fn: (h: Health) => void): () => void {
    this.#healthListeners.add(fn);
    return () => {
      this.#healthListeners.delete(fn);
    };
  }

  override onBatch(fn: (e: BatchEvent) => void): () => void {
    this.#batchListeners.add(fn);
    return () => {
      this.#batchListeners.delete(fn);
    };
  }

  /** Stops watching, waits for a reload under way, and closes the handler serving now. */
  override async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    await this.#reloading;
    for (const u of this.#unsubscribe) u();
    await this.#current.close();
  }

  /** Reloads now (what a change of a watched file does, after its debounce). */
  reload(changed: string[] = []): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      for (const c of changed) this.#changed.add(c);
      return this.#reloading;
    }
    this.#reloading = this.#reload(changed).finally(() => {
      this.#reloading = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        const next = [...this.#changed];
        this.#changed.clear();
        void this.reload(next);
      }
    });
    return this.#reloading;
  }

  async #reload(changed: string[]): Promise<void> {
    let next: Loaded;
    try {
      next = await this.#options.load();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#logger.error(
        { changed, reason: error.message },
        `reload failed, still serving the previous version: ${error.message}`,
      );
      this.#options.onReload?.({ ok: false, changed, error });
      return;
    }
    if (this.#closed) {
      await next.processor.close();
      return;
    }
    const old = this.#current;
    for (const u of this.#unsubscribe) u();
    this.#current = next.processor;
    this.#files = next.files;
    this.#subscribe();
    this.#watch();
    this.generation++;
    for (const fn of this.#healthListeners) fn(this.health());
    this.#logger.info({ changed, generation: this.generation }, 'reloaded');
    this.#options.onReload?.({ ok: true, changed });
    // The old version finishes what it was given, then closes (batches flushed, close() run).
    await this.#drain(old);
    await old
      .close()
      .catch((err: unknown) => this.#logger.warn({ err }, 'closing the previous version failed'));
  }

  #enter(): Processor {
    const p = this.#current;
    this.#inFlight.set(p, (this.#inFlight.get(p) ?? 0) + 1);
    return p;
  }

  #leave(p: Processor): void {
    const n = (this.#inFlight.get(p) ?? 1) - 1;
    if (n > 0) {
      this.#inFlight.set(p, n);
      return;
    }
    this.#inFlight.delete(p);
    this.#drained.get(p)?.();
  }

  #drain(p: Processor): Promise<void> {
    if (!this.#inFlight.get(p)) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained.set(p, () => {
        this.#drained.delete(p);
        resolve();
      });
    });
  }

  /** Health and batch listeners follow the handler serving now. */
  #subscribe(): void {
    const p = this.#current;
    this.#unsubscribe = [
      p.onHealthChange?.((h) => {
        if (p === this.#current) for (const fn of this.#healthListeners) fn(h);
      }) ?? (() => {}),
      p.onBatch?.((e) => {
        for (const fn of this.#batchListeners) fn(e);
      }) ?? (() => {}),
    ];
  }

  /**
   * Watches the folders of the files (editors save by writing a new file and renaming it over
   * the old one, which ends a watch on the file itself), acting on the files' own names.
   */
  #watch(): void {
    const byDir = new Map<string, Set<string>>();
    for (const f of this.#files) {
      const set = byDir.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      byDir.set(dirname(f), set);
    }
    for (const [dir, watcher] of this.#watchers)
      if (!byDir.has(dir)) {
        watcher.close();
        this.#watchers.delete(dir);
      }
    for (const dir of byDir.keys()) {
      if (this.#watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, (_event, name) => {
          const names = this.#namesIn(dir);
          if (name && !names.has(String(name))) return;
          this.#changed.add(`${dir}/${name}`);
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => {
            const changed = [...this.#changed];
            this.#changed.clear();
            void this.reload(changed);
          }, this.#options.debounceMs ?? 150);
        });
        watcher.on('error', (err) => this.#logger.warn({ err, dir }, 'cannot watch for reloads'));
        watcher.unref();
        this.#watchers.set(dir, watcher);
      } catch (err) {
        this.#logger.warn({ err, dir }, 'cannot watch for reloads');
      }
    }
  }

  #namesIn(dir: string): Set<string> {
    const names = new Set<string>();
    for (const f of this.#files) if (dirname(f) === dir) names.add(basename(f));
    return names;
  }
}
