import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Executor } from '@marie/core';
import { describe, expect, it } from 'vitest';
import { FileHandler } from './objects/file-handler.js';
import type { StorageHandler } from './objects/handler.js';
import { S3Handler } from './objects/s3-handler.js';
import { StorageManager } from './objects/storage-manager.js';
import { SHARDS, shardOf } from './shard.js';
import { codeFingerprint } from './storage.js';

describe('code fingerprints', () => {
  class A extends Executor {
    run() {
      return 1;
    }
  }
  class B extends Executor {
    run() {
      return 2;
    }
  }
  it('hash the class source, never "unknown", and differ with the code', () => {
    const a = codeFingerprint(new A());
    expect(a).toMatch(/^code:sha256:[0-9a-f]{32}$/);
    expect(codeFingerprint(new A())).toBe(a);
    expect(codeFingerprint(new B())).not.toBe(a);
  });
  it('hash the module files when the executor came from them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'marie-fp-'));
    const file = join(dir, 'executor.ts');
    writeFileSync(file, 'export class X {}');
    const one = codeFingerprint(new A({ metas: { modules: [file] } }));
    writeFileSync(file, 'export class X { y = 1 }');
    expect(codeFingerprint(new A({ metas: { modules: [file] } }))).not.toBe(one);
    rmSync(dir, { recursive: true });
  });
});

describe('shards', () => {
  it('are stable numbers in [0, 128)', () => {
    expect(shardOf('doc-1')).toBe(shardOf('doc-1'));
    expect(SHARDS).toBe(128);
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => shardOf(`d${i}`)));
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(127);
  });
});

describe('StorageManager', () => {
  it('picks the longest prefix first', async () => {
    const fake = (prefix: string, label: string): StorageHandler => ({
      prefixes: [prefix],
      exists: async () => true,
      list: async () => [label],
      read: async () => Buffer.from(label),
      readStream: async () => {
        throw new Error('unused');
      },
      write: async () => {},
      delete: async () => {},
    });
    const m = new StorageManager()
      .register(fake('mem://', 'short'))
      .register(fake('mem://special/', 'long'));
    expect(await m.list('mem://special/x')).toEqual(['long']);
    expect(await m.list('mem://other/x')).toEqual(['short']);
    expect(m.handlerFor('/tmp/x')).toBeInstanceOf(FileHandler);
    expect(m.canHandle('s3://bucket/key')).toBe(false);
  });

  it('S3 endpoint and region come from config, else the standard AWS environment', async () => {
    const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9999', AWS_REGION: 'eu-west-3' };
    const fromEnv = new S3Handler({}, env);
    expect(await fromEnv.client.config.region()).toBe('eu-west-3');
    const ep = await fromEnv.client.config.endpoint!();
    expect(`${ep.protocol}//${ep.hostname}:${ep.port}`).toBe('http://127.0.0.1:9999');
    expect(fromEnv.client.config.forcePathStyle).toBe(true);
    const fromConfig = new S3Handler(
      { endpoint: 'http://10.0.0.1:9000', region: 'us-west-2', forcePathStyle: false },
      env,
    );
    expect(await fromConfig.client.config.region()).toBe('us-west-2');
    expect(fromConfig.client.config.forcePathStyle).toBe(false);
    expect(() => new S3Handler({ endpoint: 'http://x:1', insecure: false })).toThrow(
      'set insecure: true',
    );
  });
});
