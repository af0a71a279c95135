import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, ErrorCode, type Logger } from '@marie/core';
import type { DocList } from '@marie/docs';
import { isPlainObject } from '@marie/docs';
import {
  type AssetMaterialization,
  AssetTracker,
  type RecordedAsset,
  type RecordOptions,
} from './asset-tracker.js';
import { type PsqlConfig, parsePsqlConfig } from './config.js';
import { DocumentStore, type StoreMode } from './document-store.js';
import { StorageError } from './errors.js';
import { JobRecords } from './job-records.js';
import type { FileHandlerOptions } from './objects/file-handler.js';
import { parseS3Config, type S3Config } from './objects/s3-handler.js';
import { StorageManager } from './objects/storage-manager.js';
import { Database } from './pg/database.js';

/** An executor's `storage:` (YAML `with.storage`), parsed. */
export interface StorageConfig {
  psql?: PsqlConfig;
  s3?: S3Config;
  file?: FileHandlerOptions;
}

export interface StorageOptions {
  /** `asset_tracking_enabled` when the config does not say (Marie's MarieExecutor: true). */
  assetTrackingDefault?: boolean;
  /**
   * The folder a relative `embedded:` path is under (an executor's workspace); the working
   * directory unless given.
   */
  embeddedBase?: () => string;
  logger?: Logger;
}

const KEYS = ['psql', 's3', 'file'];

/** Reads `storage:`; an unknown key, or a bad value under one, names itself. */
export function parseStorageConfig(
  raw: unknown,
  options: StorageOptions = {},
  path = 'storage',
): StorageConfig {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw))
    throw new ConfigError(`${path}: expected a mapping with psql, s3 or file`);
  const out: StorageConfig = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!KEYS.includes(key))
      throw new ConfigError(`${path}.${key}: unknown key (known: ${KEYS.join(', ')})`);
    if (value === undefined || value === null) continue;
    if (key === 'psql')
      out.psql = parsePsqlConfig(value, `${path}.psql`, options.assetTrackingDefault ?? false);
    if (key === 's3') out.s3 = parseS3Config(value, `${path}.s3`);
    if (key === 'file') {
      if (!isPlainObject(value))
        throw new ConfigError(`${path}.file: expected a mapping with roots`);
      for (const k of Object.keys(value))
        if (k !== 'roots') throw new ConfigError(`${path}.file.${k}: unknown key (known: roots)`);
      const roots = value.roots;
      if (
        roots !== undefined &&
        (!Array.isArray(roots) || !roots.every((r) => typeof r === 'string'))
      )
        throw new ConfigError(`${path}.file.roots: expected a list of folders`);
      out.file = roots ? { roots: roots as string[] } : {};
    }
  }
  return out;
}

/**
 * What an executor's storage is once open: the document store, job records, asset tracking (when
 * enabled) on one Postgres, and the object store. Built from `storage:`; opens on `open()`.
 */
export class Storage {
  readonly config: StorageConfig;
  readonly objects: StorageManager;
  readonly #logger: Logger | undefined;
  readonly #embeddedBase: (() => string) | undefined;
  #db?: Database;
  #documents?: DocumentStore;
  #jobs?: JobRecords;
  #assets?: AssetTracker;
  #opening?: Promise<void>;

  /**
   * `raw` is the `storage:` mapping as YAML writes it (`psql: { enabled, hostname, ... }`);
   * `Storage.fromConfig` takes one already parsed.
   */
  constructor(raw: unknown = {}, options: StorageOptions = {}) {
    this.config =
      PARSED in (options as object) ? (raw as StorageConfig) : parseStorageConfig(raw, options);
    this.#logger = options.logger;
    this.#embeddedBase = options.embeddedBase;
    this.objects = new StorageManager({
      ...(this.config.file ? { file: this.config.file } : {}),
      ...(this.config.s3 ? { s3: this.config.s3 } : {}),
    });
  }

  /** A Storage from a config already parsed (or written in code). */
  static fromConfig(config: StorageConfig, options: StorageOptions = {}): Storage {
    return new Storage(config, { ...options, [PARSED]: true } as StorageOptions);
  }

  /** `storage.psql.enabled`. */
  get enabled(): boolean {
    return this.config.psql?.enabled === true;
  }

  /** Asset tracking on (it needs storage on). */
  get assetTrackingEnabled(): boolean {
    return this.enabled && this.config.psql?.assetTrackingEnabled === true;
  }

  /** Connects and migrates (once; a failure lets the next call try again). */
  open(): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.#opening ??= this.#open().catch((err: unknown) => {
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  get database(): Database {
    return this.#need(this.#db, 'database');
  }
  get documents(): DocumentStore {
    return this.#need(this.#documents, 'document store');
  }
  get jobs(): JobRecords {
    return this.#need(this.#jobs, 'job records');
  }
  get assets(): AssetTracker {
    if (this.enabled && !this.assetTrackingEnabled)
      throw new StorageError('asset tracking is off (storage.psql.asset_tracking_enabled: false)', {
        code: ErrorCode.FailedPrecondition,
      });
    return this.#need(this.#assets, 'asset tracker');
  }

  /** Marie's `store(ref_id, ref_type, store_mode, docs)`: one transaction, all rows or none. */
  async store(
    refId: string,
    refType: string,
    storeMode: StoreMode,
    docs: DocList<object> | readonly object[],
  ): Promise<number> {
    await this.open();
    return this.documents.store(refId, refType, storeMode, docs);
  }

  async recordMaterializations(
    assets: readonly AssetMaterialization[],
    options: RecordOptions,
  ): Promise<RecordedAsset[]> {
    await this.open();
    return this.assets.recordMaterializations(assets, options);
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#documents = this.#jobs = this.#assets = undefined;
    this.#opening = undefined;
    await Promise.all([db?.close(), this.objects.close()]);
  }

  async #open(): Promise<void> {
    let psql = this.config.psql!;
    const dir = psql.embedded;
    if (dir !== undefined && !dir.startsWith('memory://') && !isAbsolute(dir))
      psql = { ...psql, embedded: resolve(this.#embeddedBase?.() ?? process.cwd(), dir) };
    const db = await Database.connect(psql, this.#logger ? { logger: this.#logger } : {});
    try {
      const documents = new DocumentStore(db, psql.schema, psql.defaultTable);
      const jobs = new JobRecords(db, psql.schema);
      await documents.migrate();
      await jobs.migrate();
      if (psql.assetTrackingEnabled) {
        const assets = new AssetTracker(db, psql.assetSchema);
        await assets.migrate();
        this.#assets = assets;
      }
      this.#db = db;
      this.#documents = documents;
      this.#jobs = jobs;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  #need<T>(value: T | undefined, what: string): T {
    if (value !== undefined) return value;
    throw new StorageError(
      this.enabled
        ? `the ${what} is not open yet (await storage.open())`
        : `storage is not enabled (storage.psql.enabled: false)`,
      { code: ErrorCode.FailedPrecondition },
    );
  }
}

const PARSED = Symbol('parsed');

/**
 * A code fingerprint for asset versions: a hash of the module files an executor was loaded from,
 * else of its class's source (the class and its parents up to the framework's): never "unknown".
 */
export function codeFingerprint(executor: {
  constructor: unknown;
  metas?: { modules?: readonly string[] };
}): string {
  const hash = createHash('sha256');
  const modules = executor.metas?.modules ?? [];
  let read = 0;
  for (const m of modules) {
    try {
      hash.update(readFileSync(m));
      read++;
    } catch {
      // A module given by package name, not by file: its class source below covers it.
    }
  }
  if (read === 0) {
    for (
      let c = executor.constructor as Function | null;
      c && c !== Function.prototype;
      c = Object.getPrototypeOf(c)
    ) {
      if (c.name === 'Executor') break;
      hash.update(Function.prototype.toString.call(c));
    }
  }
  return `code:sha256:${hash.digest('hex').slice(0, 32)}`;
}
