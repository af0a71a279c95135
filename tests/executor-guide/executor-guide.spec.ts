import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createDataRequest,
  createRequestContext,
  type DataRequest,
  loadExecutor,
  MarieError,
  RequestHandler,
  StatusCode,
} from '@marie/core';
import { DocList, LegacyDocument, NdArray, TextDoc } from '@marie/docs';
import { describe, expect, it } from 'vitest';
import {
  AsyncExecutor,
  AttributesExecutor,
  DefaultExecutor,
  DocumentProcessor,
  EmbedExecutor,
  EndpointsExecutor,
  HealthyExecutor,
  InputDoc,
  ModelExecutor,
  MultiExecutor,
  MyExecutor,
  OutputDoc,
  ParamsExecutor,
  RaisingExecutor,
  toyModel,
} from './guide-executors.js';

const here = import.meta.dirname;
const results = (res: DataRequest, name: string) =>
  (res.parameters.__results__ as Record<string, unknown>)[name];
const call = (h: RequestHandler, endpoint: string, docs: unknown[] = [], parameters = {}) =>
  h.handle(createDataRequest({ endpoint, docs, parameters }));

describe('Marie-AI executor guide, in TypeScript', () => {
  it('first executor: @requests binds /default and returns the docs', async () => {
    const h = new RequestHandler(new MyExecutor());
    const docs = await h.post<LegacyDocument>('/anything', [{ text: 'a' }, { text: 'b' }]);
    expect(docs.get('text')).toEqual(['a', 'b']);
    expect(docs.get('tags')).toEqual([{ seen: true }, { seen: true }]);
  });

  it('constructor takes its config; close runs once however it stops', async () => {
    const ex = new ModelExecutor({ model_path: '/models/extraction' });
    expect(ex.modelPath).toBe('/models/extraction');
    expect(ex.device).toBe('cuda');
    const h = new RequestHandler(ex);
    await Promise.all([h.close(), ex.close(), ex[Symbol.asyncDispose]()]);
    expect(ex.model).toBeUndefined();
    expect(ex.closed).toBe(1);

    let disposed: ModelExecutor;
    {
      await using scoped = new ModelExecutor({ model_path: '/m', device: 'cpu' });
      disposed = scoped;
      expect(scoped.closed).toBe(0);
    }
    expect(disposed.closed).toBe(1);
  });

  it('endpoints: /process returns docs, /status returns an object', async () => {
    const h = new RequestHandler(new EndpointsExecutor());
    const processed = await call(h, '/process', [{ text: 'x' }]);
    expect((processed.docs as DocList<LegacyDocument>)[0]!.text).toBe('x');
    const status = await call(h, '/status');
    expect(results(status, 'EndpointsExecutor')).toEqual({ status: 'healthy' });
  });

  it('default endpoint handles anything not bound', async () => {
    const h = new RequestHandler(new DefaultExecutor());
    const docs = await h.post<LegacyDocument>('/whatever', [{}]);
    expect(docs[0]!.tags).toEqual({ handledAs: '/default' });
  });

  it('one method bound to several endpoints', async () => {
    const ex = new MultiExecutor();
    const h = new RequestHandler(ex);
    await h.post('/extract', [{}]);
    await h.post('/process', [{}]);
    expect(ex.calls).toEqual(['/extract', '/process']);
    expect(h.endpoints().endpoints).toEqual(['/extract', '/process', '_jina_dry_run_']);
  });

  it('async endpoints', async () => {
    const h = new RequestHandler(new AsyncExecutor());
    const started = performance.now();
    const docs = await h.post<LegacyDocument>('/async-process', [{ text: 'slow' }]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(docs[0]!.text).toBe('slow');
  });

  it('typed Input/Output documents: /embed', async () => {
    const h = new RequestHandler(new EmbedExecutor());
    const docs = await h.post<OutputDoc>('/embed', [{ text: 'hello' }, {}]);
    expect(docs.docType).toBe(OutputDoc);
    expect(docs[0]!.text).toBe('hello');
    expect(docs[0]!.embedding).toBeInstanceOf(NdArray);
    expect(docs[0]!.embedding!.equals(new NdArray(toyModel.encode('hello')))).toBe(true);
    expect(docs[1]!.text).toBe('');
    const schemas = h.endpoints().schemas['/embed']!;
    expect(schemas.input.name).toBe('InputDoc');
    expect(schemas.output.model.properties).toHaveProperty('embedding');
    const bad = await call(h, '/embed', [{ text: 1 }]);
    expect(bad.header.status?.description).toBe(
      'ValidationError: docs[0].text: expected string, got number',
    );
    expect(InputDoc.$id).toBe('InputDoc');
  });

  it('AssetKeyDoc: /extract reads asset_key and pages, returns a status object', async () => {
    const ex = new DocumentProcessor({ metas: { name: 'processor' } });
    const h = new RequestHandler(ex);
    const res = await call(h, '/extract', [{ asset_key: 's3://bucket/doc.pdf', pages: [1, 2] }]);
    expect(results(res, 'processor')).toEqual({ status: 'success' });
    expect(ex.seen).toEqual([{ asset_key: 's3://bucket/doc.pdf', pages: [1, 2] }]);
    const missing = await call(h, '/extract', [{ pages: [1] }]);
    expect(missing.header.status?.description).toBe(
      'ValidationError: docs[0].asset_key: required field is missing',
    );
  });

  it('typed parameters: job_id required, layout and confidence_threshold defaulted', async () => {
    const h = new RequestHandler(new ParamsExecutor());
    const docs = await h.post<LegacyDocument>('/extract', [{}], {
      parameters: { job_id: 'job-1' },
    });
    expect(docs[0]!.tags).toEqual({
      job_id: 'job-1',
      layout: 'default',
      confidence_threshold: 0.5,
    });
    const custom = await h.post<LegacyDocument>('/extract', [{}], {
      parameters: { job_id: 'job-2', layout: 'invoice', confidence_threshold: 0.9 },
    });
    expect(custom[0]!.tags).toEqual({
      job_id: 'job-2',
      layout: 'invoice',
      confidence_threshold: 0.9,
    });
    await expect(h.post('/extract', [{}], { parameters: {} })).rejects.toThrow(
      'parameters.job_id: required field is missing',
    );
    await expect(
      h.post('/extract', [{}], { parameters: { job_id: 'j', confidence_threshold: 'high' } }),
    ).rejects.toThrow('parameters.confidence_threshold: expected number, got string "high"');
    expect(h.endpoints().schemas['/extract']!.parameters).toMatchObject({
      name: 'ExtractionParams',
      model: { required: ['job_id'] },
    });
  });

  it('YAML config: jtype, with, py_modules, metas', async () => {
    const ex = await loadExecutor(join(here, 'config.yml'));
    const res = await call(new RequestHandler(ex), '/config');
    expect(results(res, 'document-processor')).toEqual({
      model_path: '/models/extraction',
      device: 'cuda',
      num_workers: 4,
      name: 'document-processor',
      description: 'Processes documents for extraction',
    });
    expect(ex.metas.modules).toEqual(['guide-executors.ts']);
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the title quotes YAML syntax
  it('YAML storage config: ${POSTGRES_PASSWORD} comes from the environment', async () => {
    const ex = await loadExecutor(join(here, 'storage.yml'), {
      env: { POSTGRES_PASSWORD: 's3cret' },
    });
    expect((ex as unknown as { storage: unknown }).storage).toEqual({
      psql: {
        enabled: true,
        hostname: 'localhost',
        port: 5432,
        database: 'marie',
        username: 'marie',
        password: 's3cret',
        asset_tracking_enabled: true,
      },
    });
    await expect(loadExecutor(join(here, 'storage.yml'), { env: {} })).rejects.toThrow(
      'storage.yml: with.storage.psql.password uses environment variable POSTGRES_PASSWORD, which is not set',
    );
  });

  it('workspace, metas and runtimeArgs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'marie-ws-'));
    const ex = new AttributesExecutor({
      metas: { name: 'attrs', description: 'shows its attributes', workspace: root },
      runtimeArgs: { shardId: 2, shards: 3, replicas: 2 },
    });
    expect(existsSync(join(root, 'attrs'))).toBe(false);
    const res = await call(new RequestHandler(ex), '/whoami');
    expect(results(res, 'attrs')).toEqual({
      workspace: join(root, 'attrs', '2'),
      name: 'attrs',
      description: 'shows its attributes',
      shardId: 2,
      replicas: 2,
    });
    expect(statSync(join(root, 'attrs', '2')).isDirectory()).toBe(true);
    const viaRuntime = new AttributesExecutor({
      metas: { workspace: '/nope' },
      runtimeArgs: { workspace: root },
    });
    expect(viaRuntime.workspace).toBe(join(root, 'AttributesExecutor', '0'));
  });

  it('exceptions propagate to the caller with their name and message', async () => {
    const h = new RequestHandler(new RaisingExecutor());
    const res = await call(h, '/process', []);
    expect(res.header.status).toMatchObject({
      code: StatusCode.ERROR,
      description: 'ValueError: No documents provided',
      exception: {
        name: 'ValueError',
        args: ['No documents provided'],
        executor: 'RaisingExecutor',
      },
    });
    const err = await h.post('/process', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MarieError);
    expect((err as MarieError).remote).toMatchObject({
      name: 'ValueError',
      executor: 'RaisingExecutor',
    });
    expect(await h.post('/process', [{ text: 'ok' }])).toHaveLength(1);
  });

  it('health-status endpoint answers a TextDoc with JSON', async () => {
    const h = new RequestHandler(new HealthyExecutor());
    const docs = await h.post<TextDoc>('/status', [{}]);
    expect(docs.docType).toBe(TextDoc);
    expect(JSON.parse(docs[0]!.text!)).toEqual({ healthy: true, gpu: 'available' });
  });

  it('test locally without a Flow: call the method as a plain function', () => {
    const executor = new MyExecutor();
    const testDocs = new DocList(LegacyDocument, [{ text: 'local' }]);
    const result = executor.process(testDocs);
    expect(result[0]!.tags.seen).toBe(true);

    const params = new ParamsExecutor();
    const out = params.extract(
      new DocList(LegacyDocument, [{}]),
      createRequestContext({ parameters: { job_id: 'j', layout: 'x', confidence_threshold: 1 } }),
    );
    expect(out[0]!.tags).toEqual({ job_id: 'j', layout: 'x', confidence_threshold: 1 });
  });
});
