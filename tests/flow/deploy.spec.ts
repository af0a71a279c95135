// Production deployment (issue 15): `marie export` of a Flow as a GPU cluster runs it — GPUs,
// resources, security defaults, variables from a Secret and a ConfigMap (or the env file),
// autoscalers, disruption budgets, rolling updates, drain-matched grace periods, an Ingress, the
// stack's own Postgres, S3 and RabbitMQ for compose — every document checked against the Compose
// Specification and the Kubernetes schemas; and GPUs spread over replicas when run here.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { Deployment } from '@marie/flow';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { marieExport } from '../support/export.js';
import { ROOT } from '../support/marie-process.js';
import { composeValidator, validateManifest } from '../support/schemas.js';

const FIXTURE = join(ROOT, 'tests/flow/fixtures/deploy-flow.yml');
const ref = (name: string) => `\${{ ENV.${name} }}`;
/** Compose's interpolation of a variable: `${NAME}`. */
const interp = (name: string) => `\${${name}}`;
// What the exporting machine's environment holds: configuration is copied, secrets are not
// unless asked for.
const ENV = {
  MARIE_DATABASE_URL: 'postgres://marie:pg-secret-1@db.internal:5432/marie',
  MARIE_JOBS_DATABASE_URL: 'postgres://marie:pg-secret-1@db.internal:5432/jobs',
  S3_ENDPOINT_URL: 'https://s3.internal',
  S3_ACCESS_KEY: 'AKIA-EXAMPLE',
  S3_SECRET_KEY: 's3-secret-2',
  RABBITMQ_URL: 'amqps://marie:mq-secret-3@mq.internal:5671',
  CLUSTER_NAME: 'eu-1',
  MARIE_API_KEYS: 'gateway-key-4',
};
const SECRETS = ['pg-secret-1', 's3-secret-2', 'mq-secret-3', 'gateway-key-4'];

const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1]!;

function k8s(out: string) {
  const manifests: Record<string, any>[] = readdirSync(out).flatMap((f) =>
    parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((d) => ({
      ...(d.toJS() as Record<string, any>),
      file: f,
    })),
  );
  const find = (kind: string, name: string) =>
    manifests.find((m) => m.kind === kind && m.metadata.name === name)!;
  return { manifests, find };
}

describe('marie export kubernetes, for a GPU cluster', () => {
  it('GPUs, resources, placement, security defaults, probes, rolling updates and drain-matched grace', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-deploy-k8s-'));
    const res = await marieExport(['kubernetes', FIXTURE, out, '--namespace', 'ocr'], ENV);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(
      [
        'classify.yml',
        'config.yml',
        'gateway.yml',
        'ocr.yml',
        'summarize.yml',
        'worker.yml',
      ].sort(),
    );
    const { manifests, find } = k8s(out);
    for (const m of manifests) {
      const { file: _, ...manifest } = m;
      expect(() => validateManifest(manifest), `${m.kind} ${m.metadata.name}`).not.toThrow();
    }

    const ocr = find('Deployment', 'ocr');
    const pod = ocr.spec.template.spec;
    const c = pod.containers[0];
    // An autoscaler owns the replica count.
    expect(ocr.spec.replicas).toBeUndefined();
    expect(ocr.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    expect(c.resources).toEqual({
      requests: { cpu: '2', memory: '4Gi' },
      limits: { cpu: '4', memory: '8Gi', 'nvidia.com/gpu': '1' },
    });
    expect(pod.nodeSelector).toEqual({ 'cloud.google.com/gke-accelerator': 'nvidia-l4' });
    expect(pod.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(c.env).toContainEqual({ name: 'NVIDIA_DRIVER_CAPABILITIES', value: 'compute,utility' });
    // Security defaults.
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.volumeMounts).toEqual([
      { name: 'workspace', mountPath: '/workspace' },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'workspace', emptyDir: {} },
      { name: 'tmp', emptyDir: {} },
    ]);
    expect(c.env.slice(0, 2)).toEqual([
      { name: 'MARIE_WORKSPACE', value: '/workspace' },
      { name: 'HOME', value: '/workspace' },
    ]);
    // The preStop pause, then SIGTERM and `marie executor`'s drain: the grace covers both.
    expect(c.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    expect(pod.terminationGracePeriodSeconds).toBe(20);
    expect(c.readinessProbe.grpc).toEqual({ port: 8080 });
    // Monitoring (the Flow's `monitoring: true`): /metrics on 9090, annotated for Prometheus.
    expect(argAfter(c.args, '--port-monitoring')).toBe('9090');
    expect(c.ports).toContainEqual({ name: 'metrics', containerPort: 9090 });
    expect(ocr.spec.template.metadata.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9090',
      'prometheus.io/path': '/metrics',
    });

    // Device ids: the device plugin counts them; `all`: the NVIDIA runtime's env, no count.
    const classify = find('Deployment', 'classify').spec.template.spec;
    expect(classify.containers[0].resources).toEqual({
      requests: { cpu: '500m' },
      limits: { 'nvidia.com/gpu': '2' },
    });
    expect(classify.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'ocr', effect: 'NoSchedule' },
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    const summarize = find('Deployment', 'summarize').spec.template.spec.containers[0];
    expect(summarize.env).toContainEqual({ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' });
    expect(summarize.resources).toBeUndefined();
    expect(find('Deployment', 'summarize').spec.replicas).toBe(1);

    // The gateway: the Flow's limits and monitoring as flags, its own resources.
    const gateway = find('Deployment', 'gateway').spec.template.spec.containers[0];
    expect(argAfter(gateway.args, '--max-docs-per-request')).toBe('500');
    expect(gateway.args).toContain('--monitoring');
    expect(gateway.resources).toEqual({
      requests: { cpu: '250m', memory: '256Mi' },
      limits: { memory: '512Mi' },
    });
    // Workers: their own Deployment, 2 replicas, no probes, a grace for their running jobs.
    const worker = find('Deployment', 'worker');
    expect(worker.spec.replicas).toBe(2);
    expect(worker.spec.template.spec.terminationGracePeriodSeconds).toBe(45);
  });

  it('scales: a PodDisruptionBudget above one replica, autoscalers on pending requests and on CPU', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-deploy-hpa-'));
    expect((await marieExport(['kubernetes', FIXTURE, out], ENV)).code).toBe(0);
    const { manifests, find } = k8s(out);
    expect(find('PodDisruptionBudget', 'ocr').spec).toEqual({
      maxUnavailable: 1,
      selector: find('Deployment', 'ocr').spec.selector,
    });
    // classify may scale down to 1: no budget would let a drain proceed.
    expect(
      manifests.filter((m) => m.kind === 'PodDisruptionBudget').map((m) => m.metadata.name),
    ).toEqual(['ocr']);
    expect(find('HorizontalPodAutoscaler', 'ocr').spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'ocr' },
      minReplicas: 2,
      maxReplicas: 8,
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: 'jina_number_of_pending_requests' },
            target: { type: 'AverageValue', averageValue: '4' },
          },
        },
      ],
    });
    expect(find('HorizontalPodAutoscaler', 'classify').spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: 4,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } },
        },
      ],
    });
    // On pending requests, the executor serves its metrics (monitoring is forced on).
    expect(find('Deployment', 'classify').spec.template.spec.containers[0].args).toContain(
      '--monitoring',
    );
  });

  it('variables come from a Secret and a ConfigMap, per container, never inlined; secrets copied only when asked', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-deploy-secrets-'));
    expect((await marieExport(['kubernetes', FIXTURE, out], ENV)).code).toBe(0);
    const { manifests, find } = k8s(out);
    const config = find('ConfigMap', 'ocr-stack-config');
    const secret = find('Secret', 'ocr-stack-secrets');
    // Configuration is copied from the environment; secrets are left empty, to be set.
    expect(config.data).toEqual({ CLUSTER_NAME: 'eu-1' });
    expect(secret.stringData).toEqual({
      MARIE_API_KEYS: '',
      MARIE_DATABASE_URL: '',
      MARIE_JOBS_DATABASE_URL: '',
      RABBITMQ_URL: '',
      S3_ACCESS_KEY: '',
      S3_ENDPOINT_URL: '',
      S3_SECRET_KEY: '',
    });
    const text = readdirSync(out)
      .map((f) => readFileSync(join(out, f), 'utf8'))
      .join('\n');
    for (const s of SECRETS) expect(text).not.toContain(s);
    // `${{ ENV.X }}` stays a reference in the arguments; the runtime fills it from its env.
    const ocr = find('Deployment', 'ocr').spec.template.spec.containers[0];
    expect(JSON.parse(argAfter(ocr.args, '--uses-with')).storage.psql.url).toBe(
      ref('MARIE_DATABASE_URL'),
    );
    const names = (env: { name: string }[]) => env.map((e) => e.name);
    expect(ocr.env).toContainEqual({
      name: 'MARIE_DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'ocr-stack-secrets', key: 'MARIE_DATABASE_URL' } },
    });
    expect(ocr.env).toContainEqual({
      name: 'CLUSTER_NAME',
      valueFrom: { configMapKeyRef: { name: 'ocr-stack-config', key: 'CLUSTER_NAME' } },
    });
    // A reference inside an env value: Kubernetes' own $(X), after X is defined.
    const env = names(ocr.env);
    expect(ocr.env).toContainEqual({ name: 'LOG_PREFIX', value: 'ocr-$(CLUSTER_NAME)' });
    expect(env.indexOf('CLUSTER_NAME')).toBeLessThan(env.indexOf('LOG_PREFIX'));
    // Each container gets only what it needs.
    const classify = find('Deployment', 'classify').spec.template.spec.containers[0];
    expect(names(classify.env)).not.toContain('MARIE_DATABASE_URL');
    const gateway = find('Deployment', 'gateway').spec.template.spec.containers[0];
    expect(names(gateway.env)).toEqual(
      expect.arrayContaining(['MARIE_API_KEYS', 'MARIE_JOBS_DATABASE_URL']),
    );
    expect(JSON.parse(argAfter(gateway.args, '--jobs')).database).toBe(
      ref('MARIE_JOBS_DATABASE_URL'),
    );
    const worker = find('Deployment', 'worker').spec.template.spec.containers[0];
    expect(names(worker.env)).toContain('MARIE_JOBS_DATABASE_URL');
    expect(names(worker.env)).not.toContain('MARIE_API_KEYS');
    expect(manifests.filter((m) => m.kind === 'Secret')).toHaveLength(1);

    // --secret-values copies them into the Secret (only there).
    const filled = mkdtempSync(join(tmpdir(), 'marie-deploy-secrets-filled-'));
    expect((await marieExport(['kubernetes', FIXTURE, filled, '--secret-values'], ENV)).code).toBe(
      0,
    );
    const again = k8s(filled);
    expect(again.find('Secret', 'ocr-stack-secrets').stringData.S3_SECRET_KEY).toBe('s3-secret-2');
    for (const f of readdirSync(filled).filter((f) => f !== 'config.yml'))
      for (const s of SECRETS) expect(readFileSync(join(filled, f), 'utf8')).not.toContain(s);
  });

  it('an Ingress for the gateway when asked; what cannot be exported is refused, naming it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-deploy-ingress-'));
    const res = await marieExport(
      [
        'kubernetes',
        FIXTURE,
        out,
        '--ingress',
        'docs.example.com',
        '--ingress-class',
        'nginx',
        '--ingress-tls-secret',
        'docs-tls',
      ],
      ENV,
    );
    expect(res.code).toBe(0);
    const ingress = k8s(out).find('Ingress', 'gateway');
    expect(ingress.spec).toEqual({
      ingressClassName: 'nginx',
      tls: [{ hosts: ['docs.example.com'], secretName: 'docs-tls' }],
      rules: [
        {
          host: 'docs.example.com',
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: 'gateway', port: { number: 8081 } } },
              },
            ],
          },
        },
      ],
    });
    const bad = await marieExport(['kubernetes', FIXTURE, out, '--with-services', 'postgres'], ENV);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--with-services is for compose/);
  });
});

describe('marie export compose, for a GPU host', () => {
  it('GPU reservations, resources, security defaults and the env file; with its own Postgres, S3 and RabbitMQ', async () => {
    const out = mkdtempSync(join(tmpdir(), 'marie-deploy-compose-'));
    const res = await marieExport(
      ['compose', FIXTURE, out, '--with-services', 'postgres,s3,rabbitmq'],
      ENV,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const compose = parse(readFileSync(join(out, 'docker-compose.yml'), 'utf8'));
    expect(composeValidator()(compose)).toEqual([]);
    const s = compose.services as Record<string, any>;
    expect(Object.keys(s).sort()).toEqual(
      [
        'classify',
        'gateway',
        'ocr',
        'postgres',
        'rabbitmq',
        's3',
        's3-buckets',
        'summarize',
        'worker',
      ].sort(),
    );
    // As `docker run --gpus`: a count, device ids, all.
    expect(s.ocr.deploy).toEqual({
      replicas: 2,
      resources: {
        limits: { cpus: '4', memory: '8g' },
        reservations: {
          cpus: '2',
          memory: '4g',
          devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }],
        },
      },
    });
    expect(s.classify.deploy.resources.reservations.devices).toEqual([
      { driver: 'nvidia', device_ids: ['0', '1'], capabilities: ['gpu'] },
    ]);
    expect(s.summarize.deploy.resources.reservations.devices).toEqual([
      { driver: 'nvidia', count: 'all', capabilities: ['gpu'] },
    ]);
    expect(s.gateway.deploy.resources).toEqual({
      limits: { memory: '512m' },
      reservations: { cpus: '0.25', memory: '256m' },
    });
    for (const name of ['ocr', 'classify', 'summarize', 'gateway', 'worker'])
      expect(s[name], name).toMatchObject({
        user: '65532:65532',
        read_only: true,
        cap_drop: ['ALL'],
        security_opt: ['no-new-privileges:true'],
      });
    // The variables: from .env (env_file), waiting on the stack's services.
    expect(s.ocr.env_file).toEqual(['.env']);
    expect(s.ocr.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      rabbitmq: { condition: 'service_healthy' },
      's3-buckets': { condition: 'service_completed_successfully' },
    });
    expect(s.ocr.environment.LOG_PREFIX).toBe(`ocr-${interp('CLUSTER_NAME')}`);
    const env = Object.fromEntries(
      readFileSync(join(out, '.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_0-9]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // The stack's credentials are fresh, and the Flow's URLs point at its services.
    expect(env.POSTGRES_PASSWORD).toMatch(/^[\w-]{20,}$/);
    expect(env.MARIE_JOBS_DATABASE_URL).toBe(
      `postgres://marie:${env.POSTGRES_PASSWORD}@postgres:5432/marie`,
    );
    expect(env.MARIE_DATABASE_URL).toBe(env.MARIE_JOBS_DATABASE_URL);
    expect(env.S3_ENDPOINT_URL).toBe('http://s3:8333');
    expect(env.S3_SECRET_KEY).toMatch(/^[\w-]{20,}$/);
    expect(env.RABBITMQ_URL).toBe(`amqp://marie:${env.RABBITMQ_PASSWORD}@rabbitmq:5672`);
    // Configuration from the environment; a secret the stack does not own is left to set.
    expect(env.CLUSTER_NAME).toBe('eu-1');
    expect(env.MARIE_API_KEYS).toBe('');
    const text = readFileSync(join(out, 'docker-compose.yml'), 'utf8');
    for (const secret of [...SECRETS, env.POSTGRES_PASSWORD!]) expect(text).not.toContain(secret);
    expect(s.postgres.environment.POSTGRES_PASSWORD).toBe(interp('POSTGRES_PASSWORD'));
  });
});

describe('GPUs when the Flow runs here', () => {
  it('each replica gets CUDA_VISIBLE_DEVICES: listed devices spread one per replica, round robin', async () => {
    const deployment = new Deployment({
      name: 'gpus',
      uses: 'GpuReporter',
      pyModules: ['graph-executors.ts'],
      cwd: join(ROOT, 'tests/flow/fixtures'),
      replicas: 3,
      gpus: 'device=0,1',
      port: 0,
    });
    try {
      await deployment.start();
      const client = new Client({ host: deployment.addresses[0]! });
      const seen = new Map<number, string>();
      for (let i = 0; i < 30 && seen.size < 3; i++) {
        const results: Record<string, { devices: string; pid: number }>[] = [];
        await client.post('/x', [{}], {
          onDone: (r) => results.push(r.parameters.__results__ as never),
        });
        const r = Object.values(results[0]!)[0]!;
        seen.set(r.pid, r.devices);
      }
      client.close();
      const pids = deployment.pids()[0]!;
      expect(pids.map((pid) => seen.get(pid!))).toEqual(['0', '1', '0']);
    } finally {
      await deployment.close();
    }
  });
});
