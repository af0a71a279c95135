import { createHash } from 'node:crypto';

/** Marie's shard count for stored documents. */
export const SHARDS = 128;

/**
 * The shard of a document id: the first 32 bits of its SHA-256, modulo `shards`. The same in every
 * process and language (Marie's is Python's `hash()`, salted per process).
 */
export function shardOf(docId: string, shards: number = SHARDS): number {
  return createHash('sha256').update(docId).digest().readUInt32BE(0) % shards;
}
