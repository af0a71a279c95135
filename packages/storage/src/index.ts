export {
  type AssetMaterialization,
  AssetTracker,
  assetVersion,
  type LatestAsset,
  type LineageNode,
  payloadBytes,
  type RecordedAsset,
  type RecordOptions,
  type UpstreamRef,
} from './asset-tracker.js';
export { describeTarget, PSQL_DEFAULTS, type PsqlConfig, parsePsqlConfig } from './config.js';
export {
  type AssetType,
  assetPageCount,
  type DocsFromAssetOptions,
  docsFromAsset,
  sniffAssetType,
} from './docs-from-asset.js';
export {
  DocumentStore,
  type ReadOptions,
  STORE_MODES,
  type StoredDoc,
  type StoreMode,
} from './document-store.js';
export { StorageError } from './errors.js';
export {
  isTerminalStatus,
  type JobError,
  type JobInfo,
  type JobRecord,
  JobRecords,
  JobStateError,
  JobStatus,
  jobTracking,
  TERMINAL_JOB_STATUSES,
} from './job-records.js';
export { FileHandler, type FileHandlerOptions } from './objects/file-handler.js';
export type { Body, StorageHandler } from './objects/handler.js';
export { parseS3Config, parseS3Uri, type S3Config, S3Handler } from './objects/s3-handler.js';
export { StorageManager, type StorageManagerOptions } from './objects/storage-manager.js';
export { PageDoc, type PageImage, pageImages } from './page-docs.js';
export {
  type PixelBox,
  pdfTextLayer,
  type TextLayerOptions,
  type TextLayerPage,
  type TextLayerWord,
} from './pdf-text.js';
export { Database, type DatabaseOptions, type Queryable } from './pg/database.js';
export { type EmbeddedPostgres, startEmbeddedPostgres } from './pg/embedded.js';
export { MIGRATIONS_TABLE, type Migration, migrate } from './pg/migrations.js';
export { isTransient, type RetryOptions, withRetry } from './pg/retry.js';
export { type SearchablePage, searchablePdf } from './searchable-pdf.js';
export { SHARDS, shardOf } from './shard.js';
export {
  codeFingerprint,
  parseStorageConfig,
  Storage,
  type StorageConfig,
  type StorageOptions,
} from './storage.js';
export { type StorageMixin, type WithStorageClass, withStorage } from './with-storage.js';
