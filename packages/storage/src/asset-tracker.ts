import { createHash } from 'node:crypto';
import { canonicalJson } from '@marie/core';
import { StorageError } from './errors.js';
import type { Database } from './pg/database.js';
import { type Migration, migrate } from './pg/migrations.js';

/** An upstream asset a materialization was made from. */
export interface UpstreamRef {
  key: string;
  version: string;
  partitionKey?: string;
}

/** One asset produced by a step (Marie's `record_materializations` item). */
export interface AssetMaterialization {
  /** `ocr/text`, `annotation/<key>`, ... */
  key: string;
  /** Registry kind (`text`, `bbox`, `metadata`, `annotation`, ...). */
  kind?: string;
  namespace?: string;
  tags?: Record<string, unknown>;
  /** What was produced: its bytes make the checksum and, with the fingerprints, the version. */
  payload: string | Uint8Array | Record<string, unknown> | unknown[];
  /** Where the payload was written (s3://, file://), if anywhere. */
  uri?: string;
  metadata?: Record<string, unknown>;
  partitionKey?: string;
  upstream?: readonly UpstreamRef[];
}

export interface RecordOptions {
  jobId: string;
  dagId?: string;
  nodeTaskId?: string;
  /** The document row this was stored with (Marie's `storage_event_id`). */
  storageEventId?: string | number;
  /** What made the payload: `package@version`, or a hash of the code (see `codeFingerprint`). */
  codeFingerprint: string;
  /** A prompt or model configuration, for generative steps. */
  promptFingerprint?: string;
}

export interface RecordedAsset {
  assetKey: string;
  version: string;
  checksum: string;
  materializationId: string;
}

export interface LatestAsset {
  assetKey: string;
  version: string;
  materializationId: string;
  at: Date;
  partitionKey: string | null;
  checksum: string | null;
  uri: string | null;
  jobId: string | null;
  metadata: Record<string, unknown> | null;
}

/** One node of a lineage chain: an asset version and what it was made from. */
export interface LineageNode {
  assetKey: string;
  version: string;
  /** Its distance from the asset asked about (0 = that asset). */
  depth: number;
  upstream: UpstreamRef[];
}

/** The bytes a payload is hashed as: strings UTF-8, bytes as they are, JSON canonically (keys sorted). */
export function payloadBytes(payload: AssetMaterialization['payload']): Uint8Array {
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (payload instanceof Uint8Array) return payload;
  return Buffer.from(canonicalJson(payload), 'utf8');
}

/**
 * Marie's asset version: `v:sha256:<hex>` over the payload's SHA-256, the code fingerprint, the
 * prompt fingerprint and the sorted upstream versions, joined by `|`. Same inputs, same version.
 */
export function assetVersion(
  payload: AssetMaterialization['payload'],
  codeFingerprint: string,
  promptFingerprint = '',
  upstream: readonly UpstreamRef[] = [],
): string {
  const parts = [
    sha256(payloadBytes(payload)),
    codeFingerprint,
    promptFingerprint,
    ...upstream.map((u) => `${u.key}@${u.version}`).sort(),
  ];
  return `v:sha256:${sha256(Buffer.from(parts.join('|'), 'utf8'))}`;
}

/**
 * Marie's asset tables (asset_registry, asset_materialization, asset_latest, asset_lineage) in
 * one schema (Marie's `marie_scheduler` by default). Every record is awaited and transactional.
 */
export class AssetTracker {
  readonly db: Database;
  readonly schema: string;

  constructor(db: Database, schema: string) {
    this.db = db;
    this.schema = schema;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, this.schema, assetMigrations(this.schema));
  }

  /**
   * Registry upsert, materialization insert, latest upsert and lineage insert for every asset, in
   * one transaction: all recorded, or none and the error thrown.
   */
  async recordMaterializations(
    assets: readonly AssetMaterialization[],
    options: RecordOptions,
  ): Promise<RecordedAsset[]> {
    if (!options.jobId)
      throw new StorageError('recordMaterializations: jobId is required', {
        code: 'invalid_argument',
      });
    if (!options.codeFingerprint || options.codeFingerprint === 'unknown')
      throw new StorageError(
        'recordMaterializations: codeFingerprint is required (package@version or a code hash)',
        {
          code: 'invalid_argument',
        },
      );
    const prepared = assets.map((a, i) => {
      if (!a.key)
        throw new StorageError(`recordMaterializations: assets[${i}].key is required`, {
          code: 'invalid_argument',
        });
      const bytes = payloadBytes(a.payload);
      return {
        a,
        bytes: bytes.byteLength,
        checksum: sha256(bytes),
        version: assetVersion(
          a.payload,
          options.codeFingerprint,
          options.promptFingerprint,
          a.upstream,
        ),
      };
    });
    const s = `"${this.schema}"`;
    return this.db.transaction(async (q) => {
      const out: RecordedAsset[] = [];
      for (const { a, bytes, checksum, version } of prepared) {
        await q.query(
          `INSERT INTO ${s}.asset_registry (asset_key, namespace, kind, tags)
           VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (asset_key) DO UPDATE SET
             namespace = COALESCE(EXCLUDED.namespace, ${s}.asset_registry.namespace),
             kind = COALESCE(EXCLUDED.kind, ${s}.asset_registry.kind),
             tags = COALESCE(EXCLUDED.tags, ${s}.asset_registry.tags),
             updated_at = now()`,
          [a.key, a.namespace ?? null, a.kind ?? null, a.tags ? JSON.stringify(a.tags) : null],
        );
        const m = await q.query<{ id: string; created_at: Date }>(
          `INSERT INTO ${s}.asset_materialization
             (storage_event_id, asset_key, asset_version, job_id, dag_id, node_task_id,
              partition_key, size_bytes, checksum, uri, metadata)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
           RETURNING id, created_at`,
          [
            options.storageEventId ?? null,
            a.key,
            version,
            options.jobId,
            options.dagId ?? null,
            options.nodeTaskId ?? null,
            a.partitionKey ?? null,
            bytes,
            checksum,
            a.uri ?? null,
            a.metadata ? JSON.stringify(a.metadata) : null,
          ],
        );
        const id = String(m.rows[0]!.id);
        await q.query(
          `INSERT INTO ${s}.asset_latest (asset_key, latest_materialization_id, latest_version, latest_at, partition_key)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (asset_key) DO UPDATE SET
             latest_materialization_id = EXCLUDED.latest_materialization_id,
             latest_version = EXCLUDED.latest_version,
             latest_at = EXCLUDED.latest_at,
             partition_key = EXCLUDED.partition_key`,
          [a.key, id, version, m.rows[0]!.created_at, a.partitionKey ?? null],
        );
        for (const u of a.upstream ?? []) {
          await q.query(
            `INSERT INTO ${s}.asset_lineage (materialization_id, upstream_asset_key, upstream_version, upstream_partition_key)
             VALUES ($1, $2, $3, $4)`,
            [id, u.key, u.version, u.partitionKey ?? null],
          );
        }
        out.push({ assetKey: a.key, version, checksum, materializationId: id });
      }
      return out;
    }, 'asset record');
  }

  /** The latest materialization of an asset, or undefined when it has none. */
  async latest(assetKey: string): Promise<LatestAsset | undefined> {
    const s = `"${this.schema}"`;
    const res = await this.db.query(
      `SELECT l.asset_key, l.latest_version, l.latest_materialization_id, l.latest_at, l.partition_key,
              m.checksum, m.uri, m.job_id, m.metadata
       FROM ${s}.asset_latest l JOIN ${s}.asset_materialization m ON m.id = l.latest_materialization_id
       WHERE l.asset_key = $1`,
      [assetKey],
    );
    const r = res.rows[0];
    if (!r) return undefined;
    return {
      assetKey: r.asset_key,
      version: r.latest_version,
      materializationId: String(r.latest_materialization_id),
      at: r.latest_at,
      partitionKey: r.partition_key,
      checksum: r.checksum,
      uri: r.uri,
      jobId: r.job_id,
      metadata: r.metadata,
    };
  }

  /**
   * The lineage chain of an asset version (its latest when no version is given): the asset, then
   * what it was made from, then what those were made from, breadth first, each version once.
   */
  async lineage(
    assetKey: string,
    options: { version?: string; maxDepth?: number } = {},
  ): Promise<LineageNode[]> {
    const version = options.version ?? (await this.latest(assetKey))?.version;
    if (version === undefined) return [];
    const maxDepth = options.maxDepth ?? 32;
    const s = `"${this.schema}"`;
    const out: LineageNode[] = [];
    const seen = new Set<string>();
    let frontier: { key: string; version: string }[] = [{ key: assetKey, version }];
    for (let depth = 0; frontier.length && depth <= maxDepth; depth++) {
      const next: { key: string; version: string }[] = [];
      for (const node of frontier) {
        const id = `${node.key}@${node.version}`;
        if (seen.has(id)) continue;
        seen.add(id);
        // The newest materialization of that version carries its upstream links.
        const res = await this.db.query(
          `SELECT g.upstream_asset_key, g.upstream_version, g.upstream_partition_key
           FROM ${s}.asset_lineage g
           WHERE g.materialization_id = (
             SELECT id FROM ${s}.asset_materialization
             WHERE asset_key = $1 AND asset_version = $2 ORDER BY id DESC LIMIT 1)
           ORDER BY g.id`,
          [node.key, node.version],
        );
        const upstream: UpstreamRef[] = res.rows.map((r) => ({
          key: r.upstream_asset_key,
          version: r.upstream_version,
          ...(r.upstream_partition_key ? { partitionKey: r.upstream_partition_key } : {}),
        }));
        out.push({ assetKey: node.key, version: node.version, depth, upstream });
        for (const u of upstream) next.push({ key: u.key, version: u.version });
      }
      frontier = next;
    }
    return out;
  }
}

/** Marie's asset tables (config/psql/schema/044_asset_tables.sql), in `schema`. */
export function assetMigrations(schema: string): Migration[] {
  const s = `"${schema}"`;
  return [
    {
      id: `assets:${schema}:001`,
      up: async (q) => {
        await q.query(`CREATE TABLE IF NOT EXISTS ${s}.asset_registry (
          id bigserial PRIMARY KEY,
          asset_key text NOT NULL UNIQUE,
          namespace text,
          kind text,
          tags jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now())`);
        await q.query(`CREATE TABLE IF NOT EXISTS ${s}.asset_materialization (
          id bigserial PRIMARY KEY,
          storage_event_id bigint,
          asset_key text NOT NULL REFERENCES ${s}.asset_registry (asset_key),
          asset_version text NOT NULL,
          job_id text NOT NULL,
          dag_id text,
          node_task_id text,
          partition_key text,
          size_bytes bigint,
          checksum text,
          uri text,
          metadata jsonb,
          created_at timestamptz NOT NULL DEFAULT now())`);
        await q.query(
          `CREATE INDEX IF NOT EXISTS asset_materialization_key_version ON ${s}.asset_materialization (asset_key, asset_version)`,
        );
        await q.query(`CREATE TABLE IF NOT EXISTS ${s}.asset_lineage (
          id bigserial PRIMARY KEY,
          materialization_id bigint NOT NULL REFERENCES ${s}.asset_materialization (id),
          upstream_asset_key text NOT NULL,
          upstream_version text NOT NULL,
          upstream_partition_key text,
          created_at timestamptz NOT NULL DEFAULT now())`);
        await q.query(
          `CREATE INDEX IF NOT EXISTS asset_lineage_materialization ON ${s}.asset_lineage (materialization_id)`,
        );
        await q.query(`CREATE TABLE IF NOT EXISTS ${s}.asset_latest (
          asset_key text PRIMARY KEY REFERENCES ${s}.asset_registry (asset_key),
          latest_materialization_id bigint NOT NULL REFERENCES ${s}.asset_materialization (id),
          latest_version text NOT NULL,
          latest_at timestamptz NOT NULL,
          partition_key text)`);
      },
    },
  ];
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
