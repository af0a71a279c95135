import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { exitWith, UsageError } from './errors.js';

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };

/** `hello-exec` -> `HelloExecExecutor` (or `HelloExecutor` for `hello-executor`). */
export function className(name: string): string {
  const pascal = name
    .split(/[-_]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
  return pascal.endsWith('Executor') ? pascal : `${pascal}Executor`;
}

/** The files of a new executor project, by path. */
export function scaffold(name: string): Record<string, string> {
  const cls = className(name);
  const range = `^${version}`;
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `${cls}: a Marie executor`,
    engines: { node: '>=22.12' },
    main: './dist/executor.js',
    scripts: {
      build: 'tsc -p tsconfig.json',
      test: 'node --import tsx --test test/*.test.ts',
      start: 'marie executor --uses config.yml',
      dev: 'marie executor --uses config.yml --reload',
    },
    dependencies: {
      '@marie/cli': range,
      '@marie/core': range,
      '@marie/docs': range,
      // Loads executor.ts as it is, in development and in the image alike.
      tsx: '^4.23.15',
    },
    devDependencies: { '@types/node': '^24.19.4', typescript: '^5.9.3' },
  };
  return {
    'package.json': `${JSON.stringify(pkg, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'ESNext.Disposable', 'ESNext.Decorators'],
          types: ['node'],
          strict: true,
          noUncheckedIndexedAccess: true,
          verbatimModuleSyntax: true,
          rewriteRelativeImportExtensions: true,
          skipLibCheck: true,
          declaration: true,
          rootDir: '.',
          outDir: 'dist',
        },
        include: ['executor.ts', 'test/**/*.ts'],
      },
      null,
      2,
    )}\n`,
    'executor.ts': `import { Executor, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Type } from '@marie/docs';

/** The documents ${cls} takes and returns: put your fields here. */
export const TextInput = defineDoc('TextInput', {
  text: Type.String({ default: '' }),
  words: Type.Optional(Type.Integer()),
});
export type TextInput = DocOf<typeof TextInput>;

/**
 * ${cls}: one endpoint, \`/process\`. Replace its body with your processing; add endpoints with
 * more \`@requests({ on: '/name' })\` methods. A thrown error reaches the client with its name.
 */
export class ${cls} extends Executor {
  @requests({ on: '/process', requestSchema: TextInput })
  process(docs: DocList<TextInput>) {
    for (const doc of docs) {
      doc.text = doc.text.toUpperCase();
      doc.words = doc.text.split(/\\s+/).filter(Boolean).length;
    }
  }
}
`,
    'config.yml': `# marie executor --uses config.yml (keys: jtype, with, metas, py_modules, requests)
jtype: ${cls}
py_modules: [executor.ts]
metas:
  name: ${name}
`,
    'test/executor.test.ts': `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadExecutor, RequestHandler } from '@marie/core';
import { ${cls} } from '../executor.ts';

test('/process upper-cases each text and counts its words', async () => {
  const handler = new RequestHandler(new ${cls}());
  const docs = await handler.post<{ text: string; words: number }>('/process', [
    { text: 'hello marie' },
    { text: '' },
  ]);
  assert.deepEqual(
    docs.map((d) => [d.text, d.words]),
    [
      ['HELLO MARIE', 2],
      ['', 0],
    ],
  );
  await handler.close();
});

test('config.yml loads the executor as marie executor will', async () => {
  const executor = await loadExecutor('config.yml');
  assert.ok(executor instanceof ${cls});
  assert.equal(executor.runtimeArgs.name, '${name}');
  await executor.close();
});
`,
    Dockerfile: `# One image for ${cls}: docker build -t ${name} . && docker run -p 54321:54321 ${name}
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json* ./
RUN if [ -f package-lock.json ]; then npm ci; else npm install; fi
COPY . .
RUN npm run build && npm test && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build --chown=node:node /app ./
USER node
EXPOSE 54321
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \\
  CMD ["node", "node_modules/@marie/cli/bin/marie.js", "ping", "grpc://127.0.0.1:54321"]
# node is PID 1: docker stop's SIGTERM reaches marie, which drains and exits 0.
ENTRYPOINT ["node", "node_modules/@marie/cli/bin/marie.js", "executor", "--uses", "config.yml", "--port", "54321"]
`,
    '.dockerignore': 'node_modules\ndist\n.git\n',
    '.gitignore': 'node_modules/\ndist/\n',
    'README.md': `# ${name}

A [Marie](https://www.npmjs.com/package/@marie/core) executor: \`${cls}\` in \`executor.ts\`,
configured by \`config.yml\`.

\`\`\`sh
npm install
npm test                  # the executor called in process (test/executor.test.ts)
npm run build             # type-checks and compiles to dist/
npm start                 # serves it over gRPC on :54321 (add --protocol http --port 8080, ...)
npm run dev               # the same, reloading when executor.ts or config.yml change
npx marie post grpc://127.0.0.1:54321 /process --data '[{"text":"hello"}]'
docker build -t ${name} . && docker run -p 54321:54321 ${name}
\`\`\`

Any Marie or Jina client reaches it: \`new Client({ host: 'grpc://127.0.0.1:54321' })\` from
\`@marie/client\`, or Python's \`jina.Client(host='grpc://127.0.0.1:54321')\`.
`,
  };
}

/** `marie new NAME`: an executor project that builds, tests and serves as generated. */
export function newCommand(): Command {
  return new Command('new')
    .description('make a new executor project: executor.ts, config.yml, a test, a Dockerfile')
    .argument('<name>', 'the project (and folder) name: lowercase letters, digits, - and _')
    .option('--dir <folder>', 'where to make it (the current folder)', '.')
    .action((name: string, flags: { dir: string }) => {
      try {
        if (!/^[a-z][a-z0-9_-]{0,213}$/.test(name))
          throw new UsageError(
            `name: "${name}" must start with a lowercase letter and hold only lowercase letters, digits, - and _`,
          );
        const root = resolve(flags.dir, name);
        if (existsSync(root) && readdirSync(root).length > 0)
          throw new UsageError(`${root} exists and is not empty`);
        for (const [path, text] of Object.entries(scaffold(name))) {
          const file = join(root, path);
          mkdirSync(join(file, '..'), { recursive: true });
          writeFileSync(file, text);
        }
        process.stdout.write(
          `made ${root} (${className(name)})\n  cd ${join(flags.dir, name)}\n  npm install && npm test && npm start\n`,
        );
      } catch (err) {
        exitWith('marie new', err);
      }
    });
}
