import { DocList, NdArray, toJsonValue } from '@marie/docs';
import { StorageError } from './errors.js';
import type { Database, Queryable } from './pg/database.js';
import { type Migration, migrate } from './pg/migrations.js';
import { shardOf } from './shard.js';

/** Marie's store modes: which column a document is kept for (`doc`: the whole document as JSON). */
export const STORE_MODES = ['content', 'blob', 'embedding', 'doc'] as const;
export type StoreMode = (typeof STORE_MODES)[number];

/** A row of the document table, as read back. */
export interface StoredDoc {
  eventId: string;
  docId: string;
  refId: string;
  refType: string;
  storeMode: string;
  tags: Record<string, unknown> | null;
  content: unknown;
  blob: Uint8Array | null;
  /** The whole document as JSON (mode `doc`), tensors in base64 form. */
  doc: unknown;
  embedding: Float32Array | null;
  shard: number;
  createdAt: Date;
  updatedAt: Date;
  isDeleted: boolean;
}

export interface ReadOptions {
  /** Also rows soft-deleted (default false). */
  includeDeleted?: boolean;
}

// One statement writes this many rows; larger stores take several statements in one transaction.
const ROWS_PER_STATEMENT = 1000;

/**
 * Marie's document table (`schema.default_table`): `store(refId, refType, storeMode, docs)` writes
 * all rows or none; reads by reference or document id; soft delete. A document stored again under
 * the same reference and mode replaces its row (so a retried store never duplicates one).
 */
export class DocumentStore {
  readonly db: Database;
  readonly table: string;
  #embeddingType?: 'vector' | 'real[]';

  constructor(db: Database, schema: string, table: string) {
    this.db = db;
    this.table = `"${schema}"."${table}"`;
    this.schema = schema;
    this.name = table;
  }

  readonly schema: string;
  readonly name: string;

  /** Creates the table when missing: embeddings are pgvector `vector` where installed, `real[]` otherwise. */
  async migrate(): Promise<void> {
    const vector = await this.db.hasVector();
    await migrate(this.db, this.schema, documentMigrations(this.schema, this.name, vector));
    this.#embeddingType = await this.#detectEmbeddingType();
  }

  /** The embedding column's type in this database. */
  async embeddingType(): Promise<'vector' | 'real[]'> {
    this.#embeddingType ??= await this.#detectEmbeddingType();
    return this.#embeddingType;
  }

  /**
   * Stores documents under a reference, in one transaction: every row or none. Each document
   * keeps its tags, content, blob (or bytes_) and embedding; `storeMode` names the one it must
   * have (`doc` keeps the whole document as JSON). Returns the number of rows written.
   */
  async store(
    refId: string,
    refType: string,
    storeMode: StoreMode,
    docs: DocList<object> | readonly object[],
  ): Promise<number> {
    if (typeof refId !== 'string' || refId === '' || refId.length > 64)
      throw new StorageError(`store: refId must be a string of 1-64 characters`, {
        code: 'invalid_argument',
      });
    if (typeof refType !== 'string' || refType === '' || refType.length > 64)
      throw new StorageError(`store: refType must be a string of 1-64 characters`, {
        code: 'invalid_argument',
      });
    if (!STORE_MODES.includes(storeMode))
      throw new StorageError(
        `store: storeMode "${storeMode}" is not one of ${STORE_MODES.join(', ')}`,
        {
          code: 'invalid_argument',
        },
      );
    const vector = (await this.embeddingType()) === 'vector';
    const rows = toRows(docs, storeMode, vector);
    if (rows.ids.length === 0) return 0;
    await this.db.transaction(async (q) => {
      for (let i = 0; i < rows.ids.length; i += ROWS_PER_STATEMENT) {
        await this.#insert(q, refId, refType, storeMode, rows, i, i + ROWS_PER_STATEMENT, vector);
      }
    }, 'store');
    return rows.ids.length;
  }

  /** Rows of a reference (ref id + type), oldest first. */
  async byRef(refId: string, refType: string, options: ReadOptions = {}): Promise<StoredDoc[]> {
    const res = await this.db.query(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE ref_id = $1 AND ref_type = $2
       ${options.includeDeleted ? '' : 'AND NOT is_deleted'} ORDER BY event_id`,
      [refId, refType],
    );
    return res.rows.map(fromRow);
  }

  /** Rows of one document id (every reference and mode it was stored under), oldest first. */
  async byDocId(docId: string, options: ReadOptions = {}): Promise<StoredDoc[]> {
    const res = await this.db.query(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE doc_id = $1
       ${options.includeDeleted ? '' : 'AND NOT is_deleted'} ORDER BY event_id`,
      [docId],
    );
    return res.rows.map(fromRow);
  }

  /** Marks rows deleted (they stay, `is_deleted` true); returns how many changed. */
  async softDelete(
    target: { refId: string; refType: string } | { docId: string },
  ): Promise<number> {
    const [where, values] =
      'docId' in target
        ? ['doc_id = $1', [target.docId]]
        : ['ref_id = $1 AND ref_type = $2', [target.refId, target.refType]];
    const res = await this.db.query(
      `UPDATE ${this.table} SET is_deleted = true, updated_at = now() WHERE ${where} AND NOT is_deleted`,
      values,
    );
    return res.rowCount ?? 0;
  }

  async #insert(
    q: Queryable,
    refId: string,
    refType: string,
    storeMode: string,
    rows: Rows,
    from: number,
    to: number,
    vector: boolean,
  ): Promise<void> {
    const cast = vector ? 'vector' : 'real[]';
    await q.query(
      `INSERT INTO ${this.table}
         (doc_id, ref_id, ref_type, store_mode, tags, content, blob, doc, embedding, shard)
       SELECT u.d, $2, $3, $4, u.t::jsonb, u.c::jsonb, u.b, u.x, u.e::${cast}, u.s
       FROM unnest($1::text[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::text[], $10::int[])
         AS u(d, t, c, b, x, e, s)
       ON CONFLICT (ref_id, ref_type, store_mode, doc_id) DO UPDATE SET
         tags = EXCLUDED.tags, content = EXCLUDED.content, blob = EXCLUDED.blob, doc = EXCLUDED.doc,
         embedding = EXCLUDED.embedding, shard = EXCLUDED.shard, updated_at = now(), is_deleted = false`,
      [
        rows.ids.slice(from, to),
        refId,
        refType,
        storeMode,
        rows.tags.slice(from, to),
        rows.content.slice(from, to),
        rows.blob.slice(from, to),
        rows.doc.slice(from, to),
        rows.embedding.slice(from, to),
        rows.shard.slice(from, to),
      ],
    );
  }

  async #detectEmbeddingType(): Promise<'vector' | 'real[]'> {
    const res = await this.db.query<{ udt_name: string }>(
      `SELECT udt_name FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2 AND column_name = 'embedding'`,
      [this.schema, this.name],
    );
    const udt = res.rows[0]?.udt_name;
    if (udt === undefined)
      throw new StorageError(
        `postgres ${this.db.target}: table ${this.table} has no embedding column`,
      );
    return udt === 'vector' ? 'vector' : 'real[]';
  }
}

const COLUMNS = `event_id, doc_id, ref_id, ref_type, store_mode, tags, content, blob, doc,
  embedding::text AS embedding, shard, created_at, updated_at, is_deleted`;

/** The migrations of one document table. */
export function documentMigrations(schema: string, table: string, vector: boolean): Migration[] {
  const t = `"${schema}"."${table}"`;
  return [
    {
      id: `store:${schema}.${table}:001`,
      up: async (q) => {
        await q.query(
          `CREATE TABLE IF NOT EXISTS ${t} (
             event_id bigserial PRIMARY KEY,
             doc_id text NOT NULL,
             ref_id varchar(64) NOT NULL,
             ref_type varchar(64) NOT NULL,
             store_mode varchar(32) NOT NULL,
             tags jsonb,
             content jsonb,
             blob bytea,
             doc bytea,
             embedding ${vector ? 'vector' : 'real[]'},
             shard integer NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             updated_at timestamptz NOT NULL DEFAULT now(),
             is_deleted boolean NOT NULL DEFAULT false
           )`,
        );
        await q.query(
          `CREATE UNIQUE INDEX IF NOT EXISTS "${table}_ref_doc" ON ${t} (ref_id, ref_type, store_mode, doc_id)`,
        );
        await q.query(`CREATE INDEX IF NOT EXISTS "${table}_doc_id" ON ${t} (doc_id)`);
      },
    },
  ];
}

interface Rows {
  ids: string[];
  tags: (string | null)[];
  content: (string | null)[];
  blob: (Buffer | null)[];
  doc: (Buffer | null)[];
  embedding: (string | null)[];
  shard: number[];
}

function toRows(docs: DocList<object> | readonly object[], mode: StoreMode, vector: boolean): Rows {
  const rows: Rows = {
    ids: [],
    tags: [],
    content: [],
    blob: [],
    doc: [],
    embedding: [],
    shard: [],
  };
  const toJson =
    docs instanceof DocList ? toJsonValue(docs.docType, { tensors: 'base64' }) : undefined;
  const seen = new Map<string, number>();
  let i = 0;
  for (const d of docs) {
    const doc = d as Record<string, unknown>;
    const at = `docs[${i}]`;
    const id = doc.id;
    if (typeof id !== 'string' || id === '')
      throw new StorageError(`store: ${at}.id must be a non-empty string`, {
        code: 'invalid_argument',
      });
    const before = seen.get(id);
    if (before !== undefined)
      throw new StorageError(`store: ${at}.id "${id}" repeats docs[${before}].id`, {
        code: 'invalid_argument',
      });
    seen.set(id, i);
    const blob = doc.blob ?? doc.bytes_;
    if (mode === 'content' && doc.content === undefined)
      throw new StorageError(`store: ${at}.content is missing (store mode "content")`, {
        code: 'invalid_argument',
      });
    if (mode === 'blob' && blob === undefined)
      throw new StorageError(`store: ${at}.blob is missing (store mode "blob")`, {
        code: 'invalid_argument',
      });
    if (mode === 'embedding' && doc.embedding === undefined)
      throw new StorageError(`store: ${at}.embedding is missing (store mode "embedding")`, {
        code: 'invalid_argument',
      });
    rows.ids.push(id);
    rows.tags.push(doc.tags === undefined ? null : json(doc.tags, `${at}.tags`));
    rows.content.push(doc.content === undefined ? null : json(doc.content, `${at}.content`));
    rows.blob.push(blob === undefined || blob === null ? null : bytesOf(blob, `${at}.blob`));
    rows.doc.push(
      mode === 'doc' ? Buffer.from(JSON.stringify(toJson ? toJson(doc) : doc), 'utf8') : null,
    );
    rows.embedding.push(
      doc.embedding === undefined || doc.embedding === null
        ? null
        : embeddingText(doc.embedding, `${at}.embedding`, vector),
    );
    rows.shard.push(shardOf(id));
    i++;
  }
  return rows;
}

function json(value: unknown, at: string): string {
  try {
    const text = JSON.stringify(value, (_k, v) => {
      if (typeof v === 'bigint') throw new Error('a BigInt');
      if (v instanceof NdArray) return Array.from(v.data as ArrayLike<number>);
      return v;
    });
    if (text === undefined) throw new Error(`a ${typeof value}`);
    return text;
  } catch (err) {
    throw new StorageError(`store: ${at} cannot be stored as JSON: ${(err as Error).message}`, {
      code: 'invalid_argument',
    });
  }
}

function bytesOf(value: unknown, at: string): Buffer {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  throw new StorageError(`store: ${at} must be bytes`, { code: 'invalid_argument' });
}

function embeddingText(value: unknown, at: string, vector: boolean): string {
  let items: ArrayLike<number>;
  if (value instanceof NdArray) {
    if (value.shape.length !== 1)
      throw new StorageError(
        `store: ${at} must be one-dimensional, got shape [${value.shape.join(', ')}]`,
        {
          code: 'invalid_argument',
        },
      );
    items = value.data as ArrayLike<number>;
  } else if (Array.isArray(value) || ArrayBuffer.isView(value)) items = value as ArrayLike<number>;
  else
    throw new StorageError(`store: ${at} must be a vector of numbers`, {
      code: 'invalid_argument',
    });
  let text = '';
  for (let j = 0; j < items.length; j++) {
    const n = Number(items[j]);
    if (!Number.isFinite(n))
      throw new StorageError(`store: ${at}[${j}] is ${items[j]}, not a finite number`, {
        code: 'invalid_argument',
      });
    text += j ? `,${n}` : `${n}`;
  }
  return vector ? `[${text}]` : `{${text}}`;
}

function fromRow(r: Record<string, any>): StoredDoc {
  const emb = r.embedding as string | null;
  return {
    eventId: String(r.event_id),
    docId: r.doc_id,
    refId: r.ref_id,
    refType: r.ref_type,
    storeMode: r.store_mode,
    tags: r.tags,
    content: r.content,
    blob: r.blob ? new Uint8Array(r.blob) : null,
    doc: r.doc ? JSON.parse((r.doc as Buffer).toString('utf8')) : null,
    embedding: emb === null ? null : parseVector(emb),
    shard: r.shard,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    isDeleted: r.is_deleted,
  };
}

/** `{1,2}` (real[]) or `[1,2]` (vector) as floats. */
function parseVector(text: string): Float32Array {
  const inner = text.slice(1, -1);
  if (inner === '') return new Float32Array(0);
  return Float32Array.from(inner.split(','), Number);
}
