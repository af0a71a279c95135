import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequestContext, Executor, RequestHandler, requests } from '@marie/core';
import { DocList, NdArray, StorageDoc } from '@marie/docs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../test/support/postgres.js';
import { assetVersion } from './asset-tracker.js';
import { Storage, withStorage } from './index.js';

// The same store / asset / job suite on a Postgres server and on the embedded one (PGlite).
const modes: [
  string,
  () => Promise<{ psql: Record<string, unknown>; done: () => Promise<void> }>,
][] = [
  [
    'server',
    async () => {
      const db = await testDatabase();
      return { psql: db.psql, done: () => db.drop() };
    },
  ],
  [
    'embedded',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'marie-pglite-'));
      return {
        psql: { enabled: true, embedded: dir },
        done: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
];

describe.each(modes)('storage on %s Postgres', (_mode, make) => {
  let storage: Storage;
  let done: () => Promise<void>;

  beforeAll(async () => {
    const m = await make();
    done = m.done;
    storage = new Storage({
      psql: {
        ...m.psql,
        asset_tracking_enabled: true,
        schema: 'docs',
        default_table: 'extract_metadata',
      },
    });
    await storage.open();
  }, 60_000);
  afterAll(async () => {
    await storage?.close();
    await done?.();
  });

  it('stores documents in one transaction and reads them by ref and by doc id', async () => {
    const docs = new DocList(StorageDoc, [
      {
        id: 'd1',
        content: { text: 'hello' },
        tags: { action: 'extract', ttl: 2880 },
        embedding: new NdArray(new Float32Array([0.5, -1, 2])),
      },
      { id: 'd2', content: [1, 2], blob: new Uint8Array([1, 2, 3]) },
    ]);
    expect(await storage.store('ref-1', 'invoice', 'content', docs)).toBe(2);
    const rows = await storage.documents.byRef('ref-1', 'invoice');
    expect(rows.map((r) => r.docId)).toEqual(['d1', 'd2']);
    expect(rows[0]!.content).toEqual({ text: 'hello' });
    expect(rows[0]!.tags).toEqual({ action: 'extract', ttl: 2880 });
    expect(Array.from(rows[0]!.embedding!)).toEqual([0.5, -1, 2]);
    expect(Array.from(rows[1]!.blob!)).toEqual([1, 2, 3]);
    expect(rows[0]!.storeMode).toBe('content');
    expect(rows[0]!.shard).toBeGreaterThanOrEqual(0);
    expect(rows[0]!.shard).toBeLessThan(128);
    const byId = await storage.documents.byDocId('d2');
    expect(byId).toHaveLength(1);
    expect(byId[0]!.refType).toBe('invoice');
  });

  it('stores all rows or none: a bad document rolls the whole store back', async () => {
    const bad = [
      { id: 'a1', content: 'ok' },
      { id: 'a2', content: 'ok' },
      { id: 'a3', content: { big: 10n } },
    ];
    await expect(storage.store('ref-2', 'x', 'content', bad)).rejects.toThrow(
      /docs\[2\]\.content cannot be stored as JSON/,
    );
    expect(await storage.documents.byRef('ref-2', 'x')).toEqual([]);
    // A failure inside the transaction (a value Postgres refuses) rolls back too.
    const nul = [
      { id: 'b1', content: 'ok' },
      { id: 'b2', content: 'bad \u0000 text' },
    ];
    await expect(storage.store('ref-2', 'x', 'content', nul)).rejects.toThrow(
      /postgres .*store failed/,
    );
    expect(await storage.documents.byRef('ref-2', 'x')).toEqual([]);
  });

  it('names the missing field of the store mode and repeated ids', async () => {
    await expect(storage.store('r', 't', 'embedding', [{ id: 'e1', content: 1 }])).rejects.toThrow(
      'docs[0].embedding is missing',
    );
    await expect(
      storage.store('r', 't', 'content', [
        { id: 'x', content: 1 },
        { id: 'x', content: 2 },
      ]),
    ).rejects.toThrow('docs[1].id "x" repeats docs[0].id');
    await expect(storage.store('r', 't', 'bogus' as 'content', [])).rejects.toThrow(
      'storeMode "bogus"',
    );
  });

  it('storing again replaces the row; soft delete hides it', async () => {
    await storage.store('ref-3', 't', 'content', [{ id: 'c1', content: 'v1' }]);
    await storage.store('ref-3', 't', 'content', [{ id: 'c1', content: 'v2' }]);
    const rows = await storage.documents.byRef('ref-3', 't');
    expect(rows.map((r) => r.content)).toEqual(['v2']);
    expect(await storage.documents.softDelete({ refId: 'ref-3', refType: 't' })).toBe(1);
    expect(await storage.documents.byRef('ref-3', 't')).toEqual([]);
    const all = await storage.documents.byRef('ref-3', 't', { includeDeleted: true });
    expect(all.map((r) => r.isDeleted)).toEqual([true]);
    expect(await storage.documents.softDelete({ docId: 'c1' })).toBe(0);
  });

  it('keeps the whole document in mode doc', async () => {
    await storage.store(
      'ref-4',
      't',
      'doc',
      new DocList(StorageDoc, [{ id: 'w1', tags: { k: 'v' }, content: 'x' }]),
    );
    const [row] = await storage.documents.byRef('ref-4', 't');
    expect(row!.doc).toMatchObject({ id: 'w1', tags: { k: 'v' }, content: 'x' });
  });

  it('uses real[] embeddings where pgvector is not installed, and says which', async () => {
    const type = await storage.documents.embeddingType();
    const installed = await storage.database.query(
      `SELECT 1 FROM pg_extension WHERE extname = 'vector'`,
    );
    expect(type).toBe(installed.rowCount ? 'vector' : 'real[]');
  });

  it('records materializations in one transaction, with versions that depend only on their inputs', async () => {
    const [a] = await storage.recordMaterializations(
      [{ key: 'ocr/text', kind: 'text', payload: 'hello world', metadata: { char_count: 11 } }],
      { jobId: 'job-a', codeFingerprint: '@marie/ocr@0.1.0' },
    );
    expect(a!.version).toMatch(/^v:sha256:[0-9a-f]{64}$/);
    expect(a!.version).toBe(assetVersion('hello world', '@marie/ocr@0.1.0'));
    expect(a!.checksum).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    const [b] = await storage.recordMaterializations(
      [
        {
          key: 'annotation/total',
          payload: { total: 42 },
          upstream: [{ key: 'ocr/text', version: a!.version }],
        },
      ],
      { jobId: 'job-a', codeFingerprint: 'code:sha256:abc' },
    );
    // Same inputs, same version; another upstream version, another version.
    expect(b!.version).toBe(
      assetVersion({ total: 42 }, 'code:sha256:abc', '', [
        { key: 'ocr/text', version: a!.version },
      ]),
    );
    expect(b!.version).not.toBe(
      assetVersion({ total: 42 }, 'code:sha256:abc', '', [
        { key: 'ocr/text', version: 'v:sha256:0' },
      ]),
    );
    const latest = await storage.assets.latest('annotation/total');
    expect(latest).toMatchObject({ version: b!.version, jobId: 'job-a' });
    const chain = await storage.assets.lineage('annotation/total');
    expect(chain.map((n) => [n.assetKey, n.depth])).toEqual([
      ['annotation/total', 0],
      ['ocr/text', 1],
    ]);
    expect(chain[0]!.upstream).toEqual([{ key: 'ocr/text', version: a!.version }]);
    // A failing item rolls back every item of the call.
    await expect(
      storage.recordMaterializations(
        [
          { key: 'ok/one', payload: 'x' },
          { key: '', payload: 'y' },
        ],
        { jobId: 'job-b', codeFingerprint: 'c' },
      ),
    ).rejects.toThrow('assets[1].key is required');
    expect(await storage.assets.latest('ok/one')).toBeUndefined();
    await expect(
      storage.recordMaterializations([{ key: 'k', payload: 'x' }], {
        jobId: 'j',
        codeFingerprint: 'unknown',
      }),
    ).rejects.toThrow(/codeFingerprint is required/);
  });

  it('keeps job records: terminal states never move unless forced', async () => {
    const jobs = storage.jobs;
    await jobs.create('j1', { endpoint: '/x' });
    expect((await jobs.get('j1'))!.status).toBe('PENDING');
    await jobs.start('j1', { executor: 'E' });
    const done = await jobs.succeed('j1', { docs: 1 });
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 1,
      result: { docs: 1 },
      endpoint: '/x',
      executor: 'E',
    });
    expect(done.endedAt).toBeInstanceOf(Date);
    await expect(jobs.fail('j1', new Error('late'))).rejects.toThrow(
      'job j1 is SUCCEEDED, a terminal state: it cannot become FAILED',
    );
    await expect(jobs.start('j1')).rejects.toThrow(/terminal/);
    // The same terminal state again (a retried write) is accepted.
    await expect(jobs.succeed('j1', { docs: 1 })).resolves.toMatchObject({ status: 'SUCCEEDED' });
    const forced = await jobs.fail('j1', new TypeError('boom'), { force: true });
    expect(forced.status).toBe('FAILED');
    expect(forced.error).toMatchObject({ name: 'TypeError', message: 'boom' });
    expect(forced.error!.stack).toContain('TypeError: boom');
    await jobs.start('j2');
    await jobs.stop('j2');
    expect((await jobs.list({ status: 'STOPPED' })).map((j) => j.jobId)).toContain('j2');
  });
});

class Tracked extends withStorage(Executor) {
  @requests({ on: '/ok', requestSchema: StorageDoc })
  async ok(docs: DocList<StorageDoc>) {
    await this.store('r', 'tracked', 'content', docs);
    return { pages: docs.length };
  }
  @requests({ on: '/bigint' })
  bigint() {
    return { count: 10n };
  }
  @requests({ on: '/fn' })
  fn() {
    return { callback: () => 1 };
  }
  @requests({ on: '/throws' })
  throws() {
    throw new RangeError('page 9 does not exist');
  }
}

describe('job tracking through the core interceptor', () => {
  let handler: RequestHandler;
  let executor: Tracked;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await testDatabase();
    drop = db.drop;
    executor = new Tracked({ storage: { psql: db.psql } });
    handler = new RequestHandler(executor);
    await handler.open();
  });
  afterAll(async () => {
    await handler?.close();
    await drop?.();
  });

  const post = (endpoint: string, jobId: string) =>
    handler.handle({
      header: { requestId: jobId, execEndpoint: endpoint },
      parameters: { job_id: jobId, ref_id: 'doc-1', ref_type: 'invoice' },
      routes: [],
      docs: [{ id: 'x', content: 'c' }],
    });

  it('RUNNING before the method, SUCCEEDED after the answer is encodable and stored', async () => {
    const res = await post('/ok', 'ok-1');
    expect(res.header.status).toBeUndefined();
    const rec = await executor.storage.jobs.get('ok-1');
    expect(rec).toMatchObject({
      status: 'SUCCEEDED',
      endpoint: '/ok',
      executor: 'Tracked',
      refId: 'doc-1',
      refType: 'invoice',
    });
    expect(rec!.result).toEqual({ docs: 1, results: { pages: 1 } });
    expect(rec!.startedAt!.getTime()).toBeLessThanOrEqual(rec!.endedAt!.getTime());
  });

  it.each([
    ['/bigint', /__results__\.Tracked\.count is a BigInt/],
    ['/fn', /__results__\.Tracked\.callback is a function/],
  ])(
    'an answer that cannot be encoded (%s) is FAILED, and the client gets that error',
    async (endpoint, message) => {
      const id = `enc-${endpoint.slice(1)}`;
      const res = await post(endpoint, id);
      expect(res.header.status?.description).toMatch(message);
      const rec = await executor.storage.jobs.get(id);
      expect(rec!.status).toBe('FAILED');
      expect(rec!.error!.message).toMatch(message);
    },
  );

  it('a thrown error is FAILED with its name, message and stack', async () => {
    const res = await post('/throws', 'th-1');
    expect(res.header.status?.exception?.name).toBe('RangeError');
    const rec = await executor.storage.jobs.get('th-1');
    expect(rec).toMatchObject({
      status: 'FAILED',
      error: { name: 'RangeError', message: 'page 9 does not exist' },
    });
  });

  it('a request for a terminal job is refused and the record stays', async () => {
    const res = await post('/throws', 'ok-1');
    expect(res.header.status?.description).toContain('job ok-1 is SUCCEEDED');
    expect((await executor.storage.jobs.get('ok-1'))!.status).toBe('SUCCEEDED');
  });

  it('requests without job_id are not tracked', async () => {
    const before = (await executor.storage.jobs.list()).length;
    await handler.post('/ok', [{ id: 'y', content: 1 }]);
    expect((await executor.storage.jobs.list()).length).toBe(before);
  });

  it('a method called directly can store too', async () => {
    const ctx = createRequestContext();
    await executor.ok(new DocList(StorageDoc, [{ id: 'z', content: 2 }]));
    void ctx;
    expect((await executor.storage.documents.byDocId('z')).length).toBe(1);
  });
});

describe('two executors starting together against an empty database', () => {
  it('both come up; the migrations ran once', async () => {
    const db = await testDatabase();
    try {
      const script = `
        import { Storage } from '@marie/storage';
        const s = new Storage({ psql: { enabled: true, url: process.env.URL, asset_tracking_enabled: true } });
        await s.open();
        await s.store('r', String(process.pid), 'content', [{ id: 'a', content: 1 }]);
        await s.close();
        console.log('up');`;
      const run = () =>
        new Promise<string>((resolve, reject) => {
          const c = spawn(
            process.execPath,
            ['--conditions=@marie/source', '--import', 'tsx', '--input-type=module', '-e', script],
            {
              env: { ...process.env, URL: db.url },
              cwd: import.meta.dirname,
              stdio: ['ignore', 'pipe', 'pipe'],
            },
          );
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.stderr.on('data', (d) => (out += d));
          c.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(out))));
        });
      const results = await Promise.all([run(), run(), run()]);
      expect(results).toEqual(['up', 'up', 'up']);
      const s = new Storage({ psql: { enabled: true, url: db.url } });
      await s.open();
      const applied = await s.database.query('SELECT id FROM public.marie_migrations ORDER BY id');
      expect(applied.rows.map((r) => r.id)).toEqual(['jobs:public:001', 'store:public.store:001']);
      const assets = await s.database.query('SELECT id FROM marie_scheduler.marie_migrations');
      expect(assets.rows.map((r) => r.id)).toEqual(['assets:marie_scheduler:001']);
      await s.close();
    } finally {
      await db.drop();
    }
  }, 60_000);
});

describe('the embedded Postgres', () => {
  it('keeps its data across restarts, and refuses a second process on the same folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'marie-pglite-lock-'));
    const a = new Storage({ psql: { enabled: true, embedded: dir } });
    await a.open();
    await a.store('r', 't', 'content', [{ id: 'kept', content: 1 }]);
    const other = spawn(
      process.execPath,
      [
        '--conditions=@marie/source',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { Storage } from '@marie/storage';
         await new Storage({ psql: { enabled: true, embedded: process.env.DIR } }).open().then(
           () => console.log('opened'), (e) => console.log(e.message));`,
      ],
      {
        env: { ...process.env, DIR: dir },
        cwd: import.meta.dirname,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    other.stdout.on('data', (d) => (out += d));
    await new Promise((r) => other.on('exit', r));
    expect(out).toContain(
      `is in use by process ${process.pid}: an embedded Postgres serves one process`,
    );
    await a.close();
    const b = new Storage({ psql: { enabled: true, embedded: dir } });
    await b.open();
    expect((await b.documents.byDocId('kept')).length).toBe(1);
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
