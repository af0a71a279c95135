import { type Executor, type ExecutorArgs, useInterceptor } from '@marie/core';
import type { DocList } from '@marie/docs';
import type { AssetMaterialization, RecordedAsset, RecordOptions } from './asset-tracker.js';
import type { StoreMode } from './document-store.js';
import { jobTracking } from './job-records.js';
import { codeFingerprint, Storage, type StorageOptions } from './storage.js';

type ExecutorConstructor = abstract new (...args: any[]) => Executor;

/** What `withStorage` adds to an executor class. */
export interface StorageMixin {
  /** The executor's storage: documents, job records, assets, objects. */
  readonly storage: Storage;
  /** `storage.psql.enabled`. */
  readonly storageEnabled: boolean;
  readonly assetTrackingEnabled: boolean;
  /** Marie's `store(ref_id, ref_type, store_mode, docs)`: all rows or none; errors are thrown. */
  store(
    refId: string,
    refType: string,
    storeMode: StoreMode,
    docs: DocList<object> | readonly object[],
  ): Promise<number>;
  /** Records assets with this executor's code fingerprint unless one is given; awaited, transactional. */
  recordMaterializations(
    assets: readonly AssetMaterialization[],
    options: Omit<RecordOptions, 'codeFingerprint'> & { codeFingerprint?: string },
  ): Promise<RecordedAsset[]>;
}

/**
 * Marie's `StorageMixin` as a class mixin: the executor takes `storage:` (YAML `with.storage`),
 * connects and migrates in `open()`, records jobs of requests whose parameters carry `job_id`,
 * and closes its pool in `close()`.
 *
 * ```ts
 * class PersistentExecutor extends withStorage(Executor) {
 *   @requests({ on: '/extract' })
 *   async extract(docs: DocList<TextDoc>, { parameters }: RequestContext) {
 *     await this.store(String(parameters.ref_id), 'extract', 'content', docs);
 *   }
 * }
 * ```
 */
export function withStorage<TBase extends ExecutorConstructor>(
  Base: TBase,
  options: StorageOptions = {},
): WithStorageClass<TBase> {
  abstract class WithStorage extends Base implements StorageMixin {
    readonly storage: Storage;
    #fingerprint: string | undefined;

    constructor(...args: any[]) {
      const { storage, ...rest } = (args[0] ?? {}) as { storage?: unknown } & ExecutorArgs;
      super(rest, ...args.slice(1));
      // A relative `embedded:` folder lives in the executor's workspace.
      this.storage = new Storage(storage, { embeddedBase: () => this.workspace, ...options });
      if (this.storage.enabled)
        useInterceptor(
          this,
          jobTracking(async () => {
            await this.storage.open();
            return this.storage.jobs;
          }),
        );
    }

    get storageEnabled(): boolean {
      return this.storage.enabled;
    }

    get assetTrackingEnabled(): boolean {
      return this.storage.assetTrackingEnabled;
    }

    override async open(): Promise<void> {
      await super.open();
      await this.storage.open();
    }

    override async close(): Promise<void> {
      try {
        await super.close();
      } finally {
        await this.storage.close();
      }
    }

    store(
      refId: string,
      refType: string,
      storeMode: StoreMode,
      docs: DocList<object> | readonly object[],
    ): Promise<number> {
      return this.storage.store(refId, refType, storeMode, docs);
    }

    recordMaterializations(
      assets: readonly AssetMaterialization[],
      opts: Omit<RecordOptions, 'codeFingerprint'> & { codeFingerprint?: string },
    ): Promise<RecordedAsset[]> {
      return this.storage.recordMaterializations(assets, {
        ...opts,
        // Read once: the module files do not change under a running executor.
        codeFingerprint: opts.codeFingerprint ?? (this.#fingerprint ??= codeFingerprint(this)),
      });
    }
  }
  return WithStorage as unknown as WithStorageClass<TBase>;
}

/**
 * The class `withStorage` returns: one constructor taking the base's arguments plus `storage`, the
 * base's statics, instances with the mixin's members.
 */
export type WithStorageClass<TBase extends ExecutorConstructor> = (abstract new (
  args?: ExecutorArgs & { storage?: unknown },
) => InstanceType<TBase> & StorageMixin) &
  Pick<TBase, keyof TBase>;
