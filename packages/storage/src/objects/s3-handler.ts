import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ConfigError, ErrorCode } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { describe, redact, StorageError } from '../errors.js';
import type { Body, StorageHandler } from './handler.js';

/** `storage.s3` (Marie's keys), each falling back to the standard AWS environment variables. */
export interface S3Config {
  /** `endpoint_url`: an S3-compatible server (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL). */
  endpoint?: string;
  /** `region` (AWS_REGION, AWS_DEFAULT_REGION; default us-east-1). */
  region?: string;
  /** `access_key_id` / `secret_access_key` (else the SDK's chain: AWS_ACCESS_KEY_ID, profiles, ...). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `bucket_name`: the default bucket (Marie: `marie`), for asset paths. */
  bucket?: string;
  /** `addressing_style: path` (what most S3-compatible servers need); default path when an endpoint is set. */
  forcePathStyle?: boolean;
  /** `insecure`: allow http:// endpoints (else refused). */
  insecure?: boolean;
  /** Bytes per multipart part (default 8 MiB, S3's minimum is 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 4). */
  queueSize?: number;
  /** The SDK's attempts per call (default 3). */
  maxAttempts?: number;
}

const KEYS: Record<string, keyof S3Config | ''> = {
  endpoint_url: 'endpoint',
  region: 'region',
  access_key_id: 'accessKeyId',
  secret_access_key: 'secretAccessKey',
  bucket_name: 'bucket',
  addressing_style: 'forcePathStyle',
  insecure: 'insecure',
  part_size: 'partSize',
  queue_size: 'queueSize',
  max_attempts: 'maxAttempts',
  enabled: '',
};

/** Reads `storage.s3`; errors name the key, and never hold the secret. */
export function parseS3Config(raw: unknown, path = 'storage.s3'): S3Config {
  if (!isPlainObject(raw)) throw new ConfigError(`${path}: expected a mapping`);
  const out: S3Config = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = KEYS[key];
    if (field === undefined)
      throw new ConfigError(`${path}.${key}: unknown key (known: ${Object.keys(KEYS).join(', ')})`);
    if (field === '' || value === undefined || value === null) continue;
    if (typeof value === 'string' && /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value))
      throw new ConfigError(
        `${path}.${key}: looks like an unresolved environment variable reference`,
      );
    if (field === 'forcePathStyle') {
      if (value !== 'path' && value !== 'virtual' && value !== 'auto')
        throw new ConfigError(`${path}.${key}: expected path, virtual or auto`);
      if (value !== 'auto') out.forcePathStyle = value === 'path';
    } else if (field === 'insecure') {
      out.insecure = value === true || value === 'true';
    } else if (field === 'partSize' || field === 'queueSize' || field === 'maxAttempts') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1)
        throw new ConfigError(`${path}.${key}: expected a positive integer`);
      if (field === 'partSize' && n < 5 * 1024 * 1024)
        throw new ConfigError(`${path}.${key}: S3 parts are at least 5 MiB (5242880)`);
      out[field] = n;
    } else if (typeof value !== 'string') {
      throw new ConfigError(`${path}.${key}: expected a string`);
    } else out[field] = value;
  }
  return out;
}

/** `s3://bucket/key` on @aws-sdk/client-s3: streamed both ways, multipart for large objects. */
export class S3Handler implements StorageHandler {
  readonly prefixes = ['s3://'];
  readonly client: S3Client;
  readonly config: S3Config;
  readonly #secrets: string[];

  constructor(config: S3Config = {}, env: NodeJS.ProcessEnv = process.env) {
    const endpoint = config.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    if (endpoint?.startsWith('http://') && config.insecure === false)
      throw new ConfigError(
        `storage.s3.endpoint_url: ${endpoint} is http://; set insecure: true to allow it`,
      );
    this.config = config;
    const options: S3ClientConfig = {
      region: config.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      maxAttempts: config.maxAttempts ?? 3,
      forcePathStyle: config.forcePathStyle ?? endpoint !== undefined,
      ...(endpoint ? { endpoint } : {}),
      ...(config.accessKeyId && config.secretAccessKey
        ? {
            credentials: {
              accessKeyId: config.accessKeyId,
              secretAccessKey: config.secretAccessKey,
            },
          }
        : {}),
    };
    this.client = new S3Client(options);
    this.#secrets = [config.secretAccessKey, env.AWS_SECRET_ACCESS_KEY].filter(
      (s): s is string => !!s,
    );
  }

  async exists(uri: string): Promise<boolean> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw this.#fail(uri, 'exists', err);
    }
  }

  async list(uri: string): Promise<string[]> {
    const { bucket, key } = parseS3Uri(uri, true);
    const out: string[] = [];
    try {
      for await (const page of paginateListObjectsV2(
        { client: this.client },
        { Bucket: bucket, Prefix: key },
      )) {
        for (const o of page.Contents ?? []) if (o.Key) out.push(`s3://${bucket}/${o.Key}`);
      }
    } catch (err) {
      throw this.#fail(uri, 'list', err);
    }
    return out;
  }

  async read(uri: string): Promise<Buffer> {
    const stream = await this.readStream(uri);
    const chunks: Buffer[] = [];
    try {
      for await (const c of stream) chunks.push(c as Buffer);
    } catch (err) {
      throw this.#fail(uri, 'read', err);
    }
    return Buffer.concat(chunks);
  }

  async readStream(uri: string): Promise<Readable> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = res.Body;
      if (body instanceof Readable) return body;
      if (body && typeof (body as any).transformToWebStream === 'function')
        return Readable.fromWeb((body as any).transformToWebStream());
      throw new Error('the response has no body');
    } catch (err) {
      throw this.#fail(uri, 'read', err);
    }
  }

  /**
   * One PUT for small bodies, a multipart upload for large ones (lib-storage): parts stream
   * through, and a failure aborts the multipart upload so that no partial object remains.
   */
  async write(uri: string, body: Body): Promise<void> {
    const { bucket, key } = parseS3Uri(uri);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: bucket, Key: key, Body: body },
      partSize: this.config.partSize ?? 8 * 1024 * 1024,
      queueSize: this.config.queueSize ?? 4,
      leavePartsOnError: false,
    });
    // The source's own failure is the one to report: lib-storage then aborts the multipart
    // upload, and a failing abort (s3rver has none) would otherwise hide it.
    let sourceError: unknown;
    if (body instanceof Readable)
      body.once('error', (err) => {
        sourceError = err;
      });
    try {
      await upload.done();
    } catch (err) {
      if (sourceError !== undefined && sourceError !== err) {
        const e = this.#fail(uri, 'write', sourceError);
        e.message += ` (aborting the multipart upload: ${redact(describe(err), this.#secrets)})`;
        throw e;
      }
      throw this.#fail(uri, 'write', err);
    }
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = parseS3Uri(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (!notFound(err)) throw this.#fail(uri, 'delete', err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  #fail(uri: string, what: string, err: unknown): StorageError {
    const name = (err as { name?: string }).name;
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const transient = status === undefined || status >= 500 || status === 429;
    const message = redact(describe(err), this.#secrets);
    return new StorageError(
      `${uri}: ${what} failed: ${message}${status ? ` (HTTP ${status})` : ''}`,
      {
        code: notFound(err)
          ? ErrorCode.NotFound
          : transient
            ? ErrorCode.Unavailable
            : ErrorCode.Internal,
        ...(name ? { reason: name } : {}),
      },
    );
  }
}

/** `s3://bucket/key` into its parts; the key may be empty only for listings. */
export function parseS3Uri(uri: string, prefixOk = false): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m || (!prefixOk && !m[2]))
    throw new StorageError(`${uri}: expected s3://bucket/key`, { code: ErrorCode.InvalidArgument });
  return { bucket: m[1]!, key: m[2]! };
}

function notFound(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return name === 'NotFound' || name === 'NoSuchKey' || status === 404;
}
