import { join } from 'node:path';
import {
  ConfigError,
  createDataRequest,
  Executor,
  executorFromConfig,
  loadExecutor,
  RequestHandler,
  registerExecutor,
} from '@marie/core';
import type { DocList, LegacyDocument } from '@marie/docs';
import { describe, expect, it } from 'vitest';
import { PassesAll } from './fixtures/executors.js';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);

async function configError(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as Error).message;
}

describe('YAML executor config', () => {
  it('loads anchors, merge keys, ENV/CONTEXT substitution, requests remap and dynamic batching', async () => {
    const warnings: string[] = [];
    const ex = await loadExecutor(fixture('full.yml'), {
      env: { MODEL_DIR: '/opt/models' },
      context: { deployment: 'extractor' },
      warn: (m) => warnings.push(m),
    });
    expect(warnings).toEqual([
      `${fixture('full.yml')}: unknown key "defaults" ignored (known: jtype, with, metas, py_modules, modules, requests, dynamic_batching)`,
    ]);
    const h = new RequestHandler(ex);
    const settings = await h.handle(createDataRequest({ endpoint: '/settings' }));
    expect((settings.parameters.__results__ as any).extractor).toEqual({
      model_path: '/opt/models/model.onnx',
      threshold: 0.9,
      name: 'extractor',
    });
    const shouted = await h.post<LegacyDocument>('/shout', [{ text: 'hey' }]);
    expect(shouted[0]!.text).toBe('hey!');
    expect(h.endpoints().endpoints).toContain('/shout');

    const counted = await Promise.all([
      h.post<LegacyDocument>('/count', [{}, {}]),
      h.post<LegacyDocument>('/count', [{}]),
    ]);
    expect(counted.map((d) => d[0]!.tags.batch)).toEqual([3, 3]);
  });

  it('merges overrides over with: and metas:', async () => {
    const ex = await loadExecutor(fixture('full.yml'), {
      env: { MODEL_DIR: '/m' },
      context: { deployment: 'x' },
      with: { threshold: 0.1 },
      metas: { name: 'override' },
    });
    expect((ex as any).settings).toEqual({ model_path: '/m/model.onnx', threshold: 0.1 });
    expect(ex.runtimeArgs.name).toBe('override');
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the title quotes YAML syntax
  it('substitutes the older ${X} and $X forms from the environment, $$ for a dollar', async () => {
    const ex = await loadExecutor(fixture('old-env.yml'), {
      env: { LABEL_PREFIX: 'pre', LABEL_SUFFIX: 'post' },
    });
    expect((ex as PassesAll).label).toBe('pre-post costs $5');
  });

  it('names a missing environment variable or context value and where it is used', async () => {
    expect(
      await configError(
        loadExecutor(fixture('full.yml'), { env: {}, context: { deployment: 'x' } }),
      ),
    ).toBe(
      `${fixture('full.yml')}: with.model_path uses environment variable MODEL_DIR, which is not set`,
    );
    expect(
      await configError(loadExecutor(fixture('full.yml'), { env: { MODEL_DIR: '/m' } })),
    ).toMatch(
      /: metas\.name uses \$\{\{ CONTEXT\.deployment \}\}, but the context has no "deployment"$/,
    );
  });

  it('reports broken YAML with line and column', async () => {
    expect(await configError(loadExecutor(fixture('broken.yml')))).toMatch(
      /broken\.yml: YAML syntax error at line \d+, column \d+: /,
    );
  });

  it('reports an unknown jtype, listing the classes it found', async () => {
    expect(await configError(loadExecutor(fixture('unknown-jtype.yml')))).toMatch(
      /unknown-jtype\.yml: unknown jtype "Destructurin"; executor classes found: .*Destructuring, NoConfig, PassesAll/,
    );
    expect(await configError(executorFromConfig({ jtype: 'Nope' }))).toBe(
      'config: unknown jtype "Nope"; executor classes found: none (list the module defining it under py_modules)',
    );
  });

  it('reports a with: key the class does not take, whichever way the constructor reads its config', async () => {
    expect(await configError(loadExecutor(fixture('extra-with.yml')))).toMatch(
      /extra-with\.yml: Destructuring does not take "treshold" \(under with:\); it takes: model_path, threshold$/,
    );
    const classes = [PassesAll];
    expect(
      await configError(
        executorFromConfig({ jtype: 'PassesAll', with: { label: 'a', lable: 'b' } }, { classes }),
      ),
    ).toBe('config: PassesAll does not take "lable" (under with:); it takes: label');
    const ok = await executorFromConfig({ jtype: 'PassesAll', with: { label: 'a' } }, { classes });
    expect((ok as PassesAll).label).toBe('a');
    class NoCtor extends Executor {}
    expect(
      await configError(
        executorFromConfig({ jtype: 'NoCtor', with: { x: 1 } }, { classes: [NoCtor] }),
      ),
    ).toBe('config: NoCtor does not take "x" (under with:); it takes: no configuration');
  });

  it('reports a module that fails to load, one that is missing, and a Python module', async () => {
    expect(await configError(loadExecutor(fixture('broken-module.yml')))).toMatch(
      /broken-module\.yml: module broken-module\.ts failed to load: model weights missing at \/nowhere$/,
    );
    expect(
      await configError(
        executorFromConfig({ jtype: 'X', py_modules: ['gone.ts'] }, { baseDir: fixture('') }),
      ),
    ).toMatch(/^config: module gone\.ts not found \(looked for .*gone\.ts\)$/);
    expect(await configError(loadExecutor(fixture('python-module.yml')))).toMatch(
      /python-module\.yml: module executor\.py is a Python file; list the \.ts\/\.js module that defines the executor$/,
    );
  });

  it('reports a requests: remap to a method that does not exist', async () => {
    expect(await configError(loadExecutor(fixture('bad-remap.yml')))).toMatch(
      /bad-remap\.yml: requests: "\/x" maps to "noSuchMethod", which is not a method of Destructuring$/,
    );
  });

  it('reports an unreadable file and a config that is not a mapping', async () => {
    expect(await configError(loadExecutor(fixture('missing.yml')))).toMatch(
      /missing\.yml: cannot read the config \(ENOENT\)$/,
    );
    expect(await configError(executorFromConfig(['jtype']))).toBe(
      'config: expected a mapping with a "jtype" key',
    );
  });

  it('resolves registered classes by name, as `--uses ClassName` does', async () => {
    class Registered extends Executor {}
    registerExecutor(Registered);
    expect(await loadExecutor('Registered')).toBeInstanceOf(Registered);
  });

  it('uses LegacyDocument for untyped endpoints', async () => {
    const ex = await loadExecutor(fixture('full.yml'), {
      env: { MODEL_DIR: '/m' },
      context: { deployment: 'd' },
    });
    const docs = await new RequestHandler(ex).post<LegacyDocument>('/upper', [
      { text: 'a', chunks: [{ text: 'c' }] },
    ]);
    expect((docs as DocList<LegacyDocument>)[0]!.text).toBe('A');
    expect(docs[0]!.chunks![0]!.text).toBe('c');
  });
});
