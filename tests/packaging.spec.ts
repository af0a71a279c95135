import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureNode } from '../tools/use-node.mjs';

// Each package must work on its own, as npm would install it: pack the built packages, install the
// tarballs into an empty project, and use them from plain JavaScript. nx builds them first.
const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
// onnxruntime-node's postinstall downloads CUDA libraries (offline here): users without a GPU, or
// offline, skip it the same way.
const npm = (args: string[], cwd: string) =>
  run('npm', args, {
    cwd,
    env: { ...process.env, npm_config_update_notifier: 'false', ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
const work = mkdtempSync(join(tmpdir(), 'marie-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NODE_22 = '22.23.5';
// A red 1x1 PNG.
const PNG_1X1 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';

const PACKAGES = [
  'docs',
  'core',
  'proto',
  'transport-grpc',
  'transport-http',
  'client',
  'cli',
  'flow',
  'storage',
  'gpu',
  'events',
  'executor',
  'ocr',
  'jobs-contract',
  'jobs',
  'pipelines',
  'metrics',
  'tracing',
];

/** The tarballs the install test packed, for the `marie new` test after it. */
const packed: string[] = [];

describe('published packages', () => {
  it('pack only dist, package.json and README (and protos/, bin/, ui/ where named), with every export target present', async () => {
    for (const name of PACKAGES) {
      const dir = join(root, 'packages', name);
      const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], dir);
      const files: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
      expect(files).toContain('package.json');
      expect(files).toContain('README.md');
      // @marie/proto also ships its .proto sources (reflection, other languages' codegen);
      // @marie/cli its committed bin (npm links it before dist/ exists); @marie/jobs the /ui page.
      const extra = files.filter(
        (f) => !/^(dist|protos|bin|ui)\//.test(f) && f !== 'package.json' && f !== 'README.md',
      );
      expect(extra).toEqual([]);
      expect(files.some((f) => f.includes('.spec.'))).toBe(false);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      for (const target of [pkg.exports['.'].types, pkg.exports['.'].import]) {
        expect(files).toContain(target.replace(/^\.\//, ''));
      }
    }
  });

  it('ship protos/ as the repository has it, its one committed copy', async () => {
    const committed = (await run('git', ['ls-files', '*.proto'], { cwd: root })).stdout
      .trim()
      .split('\n');
    expect(committed.filter((f) => !f.startsWith('protos/'))).toEqual([]);

    const out = join(work, 'proto-pack');
    mkdirSync(out, { recursive: true });
    const { stdout } = await npm(
      ['pack', '--json', '--pack-destination', out],
      join(root, 'packages', 'proto'),
    );
    await run('tar', ['-xzf', join(out, JSON.parse(stdout)[0].filename), '-C', out]);
    const list = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith('.proto'))
        .map((e) => relative(dir, join(e.parentPath, e.name)))
        .sort();
    const shipped = list(join(out, 'package', 'protos'));
    expect(shipped).toEqual(list(join(root, 'protos')));
    expect(shipped.length).toBeGreaterThanOrEqual(3);
    for (const f of shipped) {
      expect(readFileSync(join(out, 'package', 'protos', f), 'utf8'), f).toBe(
        readFileSync(join(root, 'protos', f), 'utf8'),
      );
    }
  });

  it('install from tarballs into an empty project and run from plain JavaScript', async () => {
    const tarballs: string[] = [];
    for (const name of PACKAGES) {
      const { stdout } = await npm(
        ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
        join(root, 'packages', name),
      );
      tarballs.push(join(work, JSON.parse(stdout)[0].filename));
    }
    packed.push(...tarballs);
    const app = join(work, 'app');
    await run('mkdir', ['-p', app]);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    );
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], app);
    writeFileSync(
      join(app, 'main.js'),
      `
import { Executor, executorFromConfig, RequestHandler } from '@marie/core';
import { defineDoc, DocList, Type } from '@marie/docs';
import { GrpcServer } from '@marie/transport-grpc';
import { Client } from '@marie/client';
import { docsFromAsset, Storage, StorageManager } from '@marie/storage';
import { Nvml } from '@marie/gpu';
import { Toast, JsonlHandler } from '@marie/events';
import { MarieExecutor } from '@marie/executor';
import { OcrEngine } from '@marie/ocr';
import { jobUi } from '@marie/jobs';
import { isTerminalState, parseSubmission, queueOf } from '@marie/jobs-contract';
import { dagUi, plan, planMermaid } from '@marie/pipelines';
import Fastify from 'fastify';
import { Metrics } from '@marie/metrics';
import { startTracing } from '@marie/tracing';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const Doc = defineDoc('Doc', { text: Type.String({ default: '' }) });
class Upper extends Executor {
  run(docs) { return new DocList(Doc, docs.map((d) => ({ text: d.text.toUpperCase() }))); }
}
const ex = await executorFromConfig({ jtype: 'Upper', requests: { '/up': 'run' } }, { classes: [Upper] });
const docs = await new RequestHandler(ex).post('/up', [{ text: 'packed' }]);
const server = new GrpcServer(new RequestHandler(ex), { host: '127.0.0.1', port: 0 });
const { port } = await server.start();
const client = new Client({ host: 'grpc://127.0.0.1:' + port });
const remote = await client.post('/up', [{ text: 'over grpc' }]);
client.close();
await server.shutdown();
// @marie/storage: the embedded Postgres (PGlite), and a 1x1 PNG through docsFromAsset.
const store = new Storage({ psql: { enabled: true, embedded: 'memory://' } });
await store.open();
await store.store('r1', 'packed', 'content', [{ id: 'a', content: { n: 1 } }]);
const rows = await store.documents.byRef('r1', 'packed');
await store.close();
const dir = mkdtempSync(join(tmpdir(), 'packed-'));
writeFileSync(join(dir, 'dot.png'), Buffer.from('${PNG_1X1}', 'base64'));
const pages = await docsFromAsset(join(dir, 'dot.png'), { storage: new StorageManager({ file: { roots: [dir] } }) });
// @marie/gpu, @marie/events, @marie/executor: no GPU here (NVML reported unavailable), one event
// through the spool to JSON lines, and a MarieExecutor's /status.
const nvml = Nvml.open();
const toast = new Toast([{ handler: new JsonlHandler(join(dir, 'events.jsonl')) }], { spoolDir: join(dir, 'spool') });
await toast.notify({ event: 'packed.completed', jobid: 'p1' });
const drained = await toast.drain(5000);
await toast.close();
const status = await new RequestHandler(new MarieExecutor()).post('/status');
// @marie/ocr: the PP-OCRv4 models load from the installed packages; a blank image has no lines.
const engine = await OcrEngine.create({ threads: 1 });
const blank = await engine.ocr({ data: new Uint8Array(96 * 64 * 3).fill(255), width: 96, height: 64 });
// @marie/jobs-contract: a submission checked as the job API checks it (the queue needs Postgres:
// the jobs tests run it), and the states a job ends in.
const queue = queueOf(parseSubmission({ endpoint: '/document/extract', retry_limit: 1 })) + (isTerminalState('expired') ? '' : '?');
// ...and /ui's page, script and styles, served from the files the tarball ships.
// @marie/pipelines: a plan built and checked (a cycle refused), drawn as Mermaid; its page's files.
const built = plan('packed').map('ocr', 'ocr://document/extract').executor('fields', '/fields', { needs: ['ocr'] }).build();
let cycle = '';
try { plan('bad').noop('a', { needs: ['b'] }).noop('b', { needs: ['a'] }).build(); } catch (e) { cycle = e.message; }
const drawn = planMermaid(built).startsWith('flowchart TD') && cycle.includes('a cycle through nodes a -> b -> a');
const web = Fastify();
await web.register(jobUi(/** @type {any} */ ({ config: {} })));
await web.register(dagUi(/** @type {any} */ ({})));
const ui = await Promise.all(['/ui', '/ui/app.js', '/ui/app.css', '/ui/dags', '/ui/dags/dags.js', '/ui/dags/dags.css'].map((url) => web.inject({ url })));
await web.close();
// @marie/metrics: Jina's names on prom-client, counted for the executor above.
const metrics = new Metrics({ runtimeName: 'packed', processMetrics: false });
await metrics.instrument(new RequestHandler(ex)).handle({ header: { requestId: 'm', execEndpoint: '/up' }, parameters: {}, routes: [], docs: [{ text: 'x' }] });
const counted = (await metrics.text()).includes('jina_successful_requests_total{runtime_name="packed"} 1');
// @marie/tracing: the SDK registered, an executor's call recorded as its span.
const spans = [];
const tracing = startTracing({ serviceName: 'packed', exporter: { export: (s, done) => { spans.push(...s); done({ code: 0 }); }, shutdown: async () => {} } });
await new RequestHandler(ex).post('/up', [{ text: 't' }]);
await tracing.shutdown();
const traced = spans.some((s) => s.name === 'Upper /up');
const uiOk = ui.every((r) => r.statusCode === 200 && r.body.length > 500) && ui[0].body.includes('Marie jobs') && ui[3].body.includes('Marie DAGs');
console.log(docs[0].text + ' ' + remote[0].text + ' stored=' + rows[0].content.n + ' png=' + pages[0].tensor.shape.join('x') +
  ' nvml=' + nvml.available + ' events=' + drained + ' healthy=' + JSON.parse(status[0].text).healthy +
  ' ocr=' + engine.provider + ':' + blank.lines.length + ' queue=' + queue + ' ui=' + uiOk + ' metrics=' + counted + ' traced=' + traced +
  ' plan=' + built.nodes.length + ':' + drawn);
`,
    );
    // The suite runs on Node 24; the packed packages must also work on the oldest Node that
    // engines.node admits (22.12+).
    const node22 = join(ensureNode(NODE_22), 'node');
    for (const node of [process.execPath, node22]) {
      const { stdout } = await run(node, ['main.js'], {
        cwd: app,
        env: { ...process.env, MARIE_LOG_LEVEL: 'silent' },
      });
      expect(stdout.trim(), node).toBe(
        'PACKED OVER GRPC stored=1 png=1x1x3 nvml=false events=true healthy=true ocr=cpu:0 queue=document.extract ui=true metrics=true traced=true plan=2:true',
      );
      const version = await run(node, [join(app, 'node_modules/.bin/marie'), '--version']);
      expect(version.stdout.trim()).toBe('0.1.0');
    }
    const v22 = await run(node22, ['-p', 'process.version']);
    expect(v22.stdout.trim()).toBe(`v${NODE_22}`);
  }, 180_000);

  it('`marie new NAME` makes a project that installs the packed packages, builds, tests and serves as generated', async () => {
    expect(packed.length).toBe(PACKAGES.length);
    const app = join(work, 'app');
    const made = await run(process.execPath, [
      join(app, 'node_modules/.bin/marie'),
      'new',
      'word-counter',
      '--dir',
      work,
    ]);
    expect(made.stdout).toContain('(WordCounterExecutor)');
    const project = join(work, 'word-counter');
    expect(readdirSync(project).sort()).toEqual(
      [
        '.dockerignore',
        '.gitignore',
        'Dockerfile',
        'README.md',
        'config.yml',
        'executor.ts',
        'package.json',
        'test',
        'tsconfig.json',
      ].sort(),
    );
    // A second time into the same folder is refused.
    await expect(
      run(process.execPath, [
        join(app, 'node_modules/.bin/marie'),
        'new',
        'word-counter',
        '--dir',
        work,
      ]),
    ).rejects.toMatchObject({ code: 2 });
    // As a user would: its dependencies, the Marie ones from the tarballs (not yet published).
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...packed], project);
    await npm(['run', 'build'], project);
    expect(readdirSync(join(project, 'dist')).sort()).toContain('executor.js');
    const tested = await npm(['test'], project);
    // (colored where CI forces color: compared without the escapes)
    expect(stripVTControlCharacters(tested.stdout)).toMatch(/pass 2\n.*fail 0/);
    // `npm start`'s command, on a free port, answering a client, stopping on SIGTERM.
    const server = spawn(
      process.execPath,
      [
        join(project, 'node_modules/.bin/marie'),
        'executor',
        '--uses',
        'config.yml',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
      ],
      { cwd: project, env: { ...process.env, MARIE_LOG_LEVEL: 'warn' } },
    );
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /^ready (grpc:\/\/\S+)$/m.exec(out);
          if (m) resolve(m[1]!);
        });
        server.on('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const posted = await run(process.execPath, [
        join(project, 'node_modules/.bin/marie'),
        'post',
        address,
        '/process',
        '--data',
        '[{"text":"count these words"}]',
      ]);
      expect(JSON.parse(posted.stdout)).toMatchObject({ text: 'COUNT THESE WORDS', words: 3 });
    } finally {
      server.kill('SIGTERM');
    }
    expect(await new Promise((r) => server.on('exit', (code) => r(code)))).toBe(0);
    const dockerfile = readFileSync(join(project, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:24-bookworm-slim AS build$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
  }, 180_000);
});
