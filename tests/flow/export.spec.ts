import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFlow, toCompose } from '@marie/flow';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { EXPORT_FIXTURE, marieExport } from '../support/export.js';
import { ROOT } from '../support/marie-process.js';
import { composeValidator, validateManifest } from '../support/schemas.js';

const FIXTURE = EXPORT_FIXTURE;

const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1]!;

describe('marie export compose', () => {
  it('writes a compose file the published Compose Specification accepts', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-compose-'));
    const res = await marieExport(['compose', FIXTURE, out, '--image', 'acme/docs:1']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const compose = parse(readFileSync(join(out, 'docker-compose.yml'), 'utf8'));
    expect(composeValidator()(compose)).toEqual([]);

    const services = compose.services as Record<string, any>;
    expect(Object.keys(services).sort()).toEqual(
      ['a', 'b', 'c', 'gateway', 'join', 'sharded-0', 'sharded-1', 'side'].sort(),
    );
    // Executors: the image's `marie` entrypoint runs them on 8080 with paths inside the image.
    expect(services.a.image).toBe('acme/docs:1');
    expect(services.a.command).toEqual([
      'executor',
      '--uses',
      'Tagger',
      '--name',
      'a',
      '--host',
      '0.0.0.0',
      '--port',
      '8080',
      '--py-modules',
      '/app/flow/graph-executors.ts',
    ]);
    expect(services.a.healthcheck.test).toEqual([
      'CMD',
      'marie',
      'ping',
      'grpc://127.0.0.1:8080',
      '--timeout',
      '2000',
    ]);
    expect(services.c.deploy).toEqual({ replicas: 2 });
    expect(services.c.environment).toEqual({
      MARIE_WORKSPACE: '/workspace',
      HOME: '/workspace',
      MARIE_LOG_LEVEL: 'warn',
    });
    // Security defaults on every service: nonroot, read-only root, a workspace volume, no
    // capabilities, no privilege escalation.
    for (const svc of Object.values(services)) {
      expect(svc).toMatchObject({
        user: '65532:65532',
        read_only: true,
        tmpfs: ['/tmp'],
        cap_drop: ['ALL'],
        security_opt: ['no-new-privileges:true'],
      });
      expect(svc.volumes).toEqual([expect.stringMatching(/^[a-z0-9-]+-workspace:\/workspace$/)]);
    }
    expect(Object.keys(compose.volumes)).toContain('c-workspace');
    expect(services.join.command).toContain('--no-reduce');
    expect(services['sharded-1'].command.slice(-4)).toEqual(['--shard-id', '1', '--shards', '2']);
    // A variable the Flow references stays a reference in the arguments; its value is in .env,
    // which the service reads (env_file), and only it.
    expect(argAfter(services.side.command, '--uses-with')).toBe(`{"file":"\${{ ENV.MARKER }}"}`);
    expect(services.side.env_file).toEqual(['.env']);
    expect(services.a.env_file).toBeUndefined();
    expect(readFileSync(join(out, '.env'), 'utf8')).toMatch(/^MARKER=\/tmp\/marker\.txt$/m);

    // The gateway: graph, conditions, addresses (every replica through Docker's DNS), polling.
    const g = services.gateway;
    expect(g.command[0]).toBe('gateway');
    expect(JSON.parse(argAfter(g.command, '--graph-description'))).toEqual({
      'start-gateway': ['a'],
      a: ['b', 'c', 'side'],
      b: ['join'],
      c: ['join'],
      join: ['sharded'],
      sharded: ['end-gateway'],
      side: [],
    });
    expect(JSON.parse(argAfter(g.command, '--graph-conditions'))).toEqual({
      b: { tags__kind: { $eq: 'invoice' } },
    });
    expect(JSON.parse(argAfter(g.command, '--deployments-addresses'))).toMatchObject({
      c: [['dns:///c:8080']],
      sharded: [['dns:///sharded-0:8080'], ['dns:///sharded-1:8080']],
    });
    expect(JSON.parse(argAfter(g.command, '--deployments-polling'))).toEqual({ sharded: 'ALL' });
    expect(argAfter(g.command, '--timeout-send')).toBe('20000');
    expect(g.ports).toEqual(['8080:8080', '8081:8081']);
    expect(g.healthcheck.test[3]).toBe('grpc://127.0.0.1:8080');
    expect(Object.keys(g.depends_on).sort()).toEqual(
      ['a', 'b', 'c', 'join', 'sharded-0', 'sharded-1', 'side'].sort(),
    );
    expect(g.depends_on.a).toEqual({ condition: 'service_healthy' });
  });

  it('the validator is not vacuous: it refuses a broken service', () => {
    const validate = composeValidator();
    expect(validate({ services: { a: { image: 'x', restart: 'unless-stopped' } } })).toEqual([]);
    expect(validate({ services: { a: { image: 'x', replicas: 2 } } }).join()).toMatch(
      /additional properties/,
    );
    expect(validate({ services: { a: { healthcheck: { interval: 'soon' } } } }).join()).toMatch(
      /interval.*format/,
    );
  });

  it('examples/pipeline/docker-compose.yml is the export of the example Flow', async () => {
    const flow = await loadFlow(join(ROOT, 'examples/pipeline/pipeline.yml'));
    const expected = toCompose(flow, {
      build: { context: '../..', args: { FLOW: './examples/pipeline' } },
    });
    const committed = parse(
      readFileSync(join(ROOT, 'examples/pipeline/docker-compose.yml'), 'utf8'),
    );
    expect(committed).toEqual(expected);
    expect(composeValidator()(committed)).toEqual([]);
  });

  it('names what is wrong and writes nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-compose-bad-'));
    const missing = await marieExport(['compose', join(out, 'nope.yml'), out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yml: cannot read the config/);
    const target = await marieExport(['swarm', FIXTURE, out]);
    expect(target.code).not.toBe(0);
    expect(target.stderr).toMatch(/compose, kubernetes/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('marie export kubernetes', () => {
  it('writes a Deployment and a Service per executor shard, valid against the Kubernetes schemas', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-k8s-'));
    const res = await marieExport(['kubernetes', FIXTURE, out, '--namespace', 'docs']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(
      [
        'a.yml',
        'b.yml',
        'c.yml',
        'config.yml',
        'gateway.yml',
        'join.yml',
        'sharded.yml',
        'side.yml',
      ].sort(),
    );
    const manifests = readdirSync(out).flatMap((f) =>
      parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((d) => d.toJS()),
    );
    for (const m of manifests) expect(() => validateManifest(m), m.metadata.name).not.toThrow();
    const byKind = (kind: string, name: string) =>
      manifests.find((m) => m.kind === kind && m.metadata.name === name);
    expect(manifests.filter((m) => m.kind === 'Deployment')).toHaveLength(8);
    expect(manifests.filter((m) => m.kind === 'Service')).toHaveLength(8);
    expect(manifests.filter((m) => m.kind === 'PodDisruptionBudget')).toHaveLength(1);
    for (const m of manifests) expect(m.metadata.namespace).toBe('docs');

    const c = byKind('Deployment', 'c');
    expect(c.spec.replicas).toBe(2);
    const container = c.spec.template.spec.containers[0];
    expect(container.image).toBe('marie/runtime:0.1.0');
    expect(container.readinessProbe.grpc).toEqual({ port: 8080 });
    expect(container.livenessProbe.grpc).toEqual({ port: 8080 });
    expect(container.env).toEqual([
      { name: 'MARIE_WORKSPACE', value: '/workspace' },
      { name: 'HOME', value: '/workspace' },
      { name: 'MARIE_LOG_LEVEL', value: 'warn' },
    ]);
    // Two replicas: at most one away at a time.
    expect(byKind('PodDisruptionBudget', 'c').spec).toEqual({
      maxUnavailable: 1,
      selector: c.spec.selector,
    });
    expect(byKind('PodDisruptionBudget', 'a')).toBeUndefined();
    // The referenced variable comes from the ConfigMap, to the one container that needs it.
    expect(byKind('ConfigMap', 'docs-pipeline-config').data).toEqual({ MARKER: '/tmp/marker.txt' });
    const side = byKind('Deployment', 'side').spec.template.spec.containers[0];
    expect(side.env).toContainEqual({
      name: 'MARKER',
      valueFrom: { configMapKeyRef: { name: 'docs-pipeline-config', key: 'MARKER' } },
    });
    expect(container.env.some((e: { name: string }) => e.name === 'MARKER')).toBe(false);
    expect(c.spec.selector.matchLabels).toEqual(
      Object.fromEntries(
        Object.entries(c.spec.template.metadata.labels).filter(([k]) => !k.endsWith('component')),
      ),
    );
    // Executors get headless Services: the gateway resolves every pod and balances over them.
    expect(byKind('Service', 'c').spec.clusterIP).toBe('None');
    expect(byKind('Deployment', 'sharded-1').spec.template.metadata.labels['marie.ai/shard']).toBe(
      '1',
    );

    const gateway = byKind('Deployment', 'gateway').spec.template.spec.containers[0];
    expect(JSON.parse(argAfter(gateway.args, '--deployments-addresses'))).toMatchObject({
      a: [['dns:///a.docs.svc:8080']],
      sharded: [['dns:///sharded-0.docs.svc:8080'], ['dns:///sharded-1.docs.svc:8080']],
    });
    expect(gateway.ports).toEqual([
      { name: 'grpc', containerPort: 8080 },
      { name: 'http', containerPort: 8081 },
    ]);
    expect(byKind('Service', 'gateway').spec.clusterIP).toBeUndefined();
    expect(byKind('Service', 'gateway').spec.ports.map((p: any) => p.port)).toEqual([8080, 8081]);
  });

  it('the schemas are not vacuous: a broken Deployment is refused', () => {
    expect(() =>
      validateManifest({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        spec: { replicas: '2' },
      } as never),
    ).toThrow(/replicas must be integer/);
  });
});

describe('marie export with jobs', () => {
  const JOBS_FIXTURE = join(ROOT, 'tests/flow/fixtures/jobs-export-flow.yml');

  it('compose: the gateway serves the job API, a worker service (3 replicas) runs the queues through it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-compose-jobs-'));
    const res = await marieExport(['compose', JOBS_FIXTURE, out]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const compose = parse(readFileSync(join(out, 'docker-compose.yml'), 'utf8'));
    expect(composeValidator()(compose)).toEqual([]);
    const services = compose.services as Record<string, any>;
    expect(Object.keys(services).sort()).toEqual(['gateway', 'text-extraction', 'worker']);
    const api = JSON.parse(argAfter(services.gateway.command, '--jobs'));
    expect(api).toMatchObject({
      database: 'postgres://marie@postgres:5432/marie',
      uploads: 's3://marie/uploads',
    });
    expect(api.queues).toBeUndefined(); // the gateway runs no jobs itself
    const worker = services.worker;
    expect(worker.command.slice(0, 3)).toEqual(['worker', '--target', 'grpc://gateway:8080']);
    expect(JSON.parse(argAfter(worker.command, '--jobs')).queues).toEqual({
      'document.extract': 2,
    });
    expect(worker.deploy).toEqual({ replicas: 3 });
    expect(worker.depends_on).toEqual({ gateway: { condition: 'service_healthy' } });
    expect(worker.healthcheck).toBeUndefined();
    expect(worker.stop_grace_period).toBe('40s');
    expect(services['text-extraction'].stop_grace_period).toBe('15s');
  });

  it('kubernetes: a worker Deployment (no Service, no probes) beside the gateway', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-k8s-jobs-'));
    const res = await marieExport(['kubernetes', JOBS_FIXTURE, out, '--namespace', 'ocr']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['gateway.yml', 'text-extraction.yml', 'worker.yml']);
    const manifests = parseAllDocuments(readFileSync(join(out, 'worker.yml'), 'utf8')).map((d) =>
      d.toJS(),
    );
    expect(manifests.map((m) => m.kind)).toEqual(['Deployment']);
    for (const m of manifests) expect(() => validateManifest(m)).not.toThrow();
    const [d] = manifests;
    expect(d.spec.replicas).toBe(3);
    expect(d.metadata.labels['app.kubernetes.io/component']).toBe('worker');
    const container = d.spec.template.spec.containers[0];
    expect(container.args.slice(0, 3)).toEqual([
      'worker',
      '--target',
      'grpc://gateway.ocr.svc:8080',
    ]);
    expect(container.readinessProbe).toBeUndefined();
    // The preStop pause (5 s) and the worker's drain (40 s).
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(45);
  });
});
