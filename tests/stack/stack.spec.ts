// The whole stack of the root docker-compose.yml. No Docker engine runs here, so: (1) the file is
// checked against the Compose Specification (with .env interpolated as compose does) and for
// what a production stack needs; (2) the same topology runs as processes: a real Postgres, an S3
// server (s3rver), RabbitMQ, two text-extraction replicas started from apps/text-extraction's
// stack.yml with the environment the compose file gives them (its host names mapped to these
// servers), and the gateway app's config.yml in front of them; a sample document goes through
// the gateway's HTTP API and its text, job record, stored OCR JSON and events are checked.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@marie/storage';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rabbitUrl } from '../../packages/events/test/support/rabbit.js';
import { type TestDatabase, testDatabase } from '../../packages/storage/test/support/postgres.js';
import { startS3, type TestS3 } from '../../packages/storage/test/support/s3rver.js';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';
import { composeValidator } from '../support/schemas.js';

const dotenv = Object.fromEntries(
  readFileSync(join(ROOT, '.env'), 'utf8')
    .split('\n')
    .filter((l) => /^\w+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
/** Compose's interpolation: ${VAR} from .env, $$ a literal $. */
const interpolate = (text: string) =>
  text.replace(/\$\$|\$\{(\w+)\}/g, (_m, name?: string) => {
    if (!name) return '$';
    if (!(name in dotenv)) throw new Error(`docker-compose.yml uses \${${name}}, which .env lacks`);
    return dotenv[name]!;
  });
const raw = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(interpolate(raw));
const services = compose.services as Record<string, any>;

describe('docker-compose.yml, the whole stack', () => {
  it('is valid Compose, with every service the stack needs, pinned, health-checked and on volumes', () => {
    expect(composeValidator()(compose)).toEqual([]);
    expect(Object.keys(services).sort()).toEqual(
      ['gateway', 'postgres', 'rabbitmq', 's3', 's3-buckets', 'text-extraction'].sort(),
    );
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, name).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(s.image, name).not.toMatch(/:latest$|minio/);
      if (name !== 's3-buckets') expect(s.healthcheck?.test, name).toBeDefined();
    }
    expect(services['text-extraction'].deploy.replicas).toBe(2);
    expect(services.gateway.depends_on['text-extraction'].condition).toBe('service_healthy');
    expect(services['text-extraction'].depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      rabbitmq: { condition: 'service_healthy' },
      's3-buckets': { condition: 'service_completed_successfully' },
    });
    expect(Object.keys(compose.volumes).sort()).toEqual([
      'pgdata',
      'rabbitdata',
      's3data',
      'text-extraction-workspace',
    ]);
    // The app services run with the export's security defaults.
    for (const app of ['text-extraction', 'gateway'])
      expect(services[app], app).toMatchObject({
        read_only: true,
        tmpfs: ['/tmp'],
        cap_drop: ['ALL'],
        security_opt: ['no-new-privileges:true'],
      });
    expect(services.postgres.volumes).toEqual(['pgdata:/var/lib/postgresql/data']);
    // The apps' images are built from their own Dockerfiles.
    for (const app of ['text-extraction', 'gateway'])
      expect(services[app].build).toEqual({ context: '.', dockerfile: `apps/${app}/Dockerfile` });
    // Credentials come from .env, never written into the compose file itself.
    for (const secret of [dotenv.POSTGRES_PASSWORD, dotenv.S3_SECRET_KEY, dotenv.RABBITMQ_PASSWORD])
      expect(raw).not.toContain(secret);
    expect(services.postgres.environment.POSTGRES_PASSWORD).toBe(dotenv.POSTGRES_PASSWORD);
  });
});

describe('the stack as processes', () => {
  let db: TestDatabase;
  let s3: TestS3;
  let rabbit: URL;
  const procs: MarieProcess[] = [];
  let gatewayHttp: string;

  beforeAll(async () => {
    [db, s3, rabbit] = await Promise.all([
      testDatabase('marie_stack'),
      startS3([dotenv.S3_BUCKET!]),
      rabbitUrl().then((u) => new URL(u)),
    ]);
    const dbUrl = new URL(db.url);
    // The compose service names, mapped to the servers here.
    const hosts: Record<string, string> = {
      POSTGRES_HOST: dbUrl.hostname,
      POSTGRES_PORT: dbUrl.port || '5432',
      POSTGRES_DB: dbUrl.pathname.slice(1),
      POSTGRES_USER: decodeURIComponent(dbUrl.username) || 'postgres',
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.s3.access_key_id,
      S3_SECRET_KEY: s3.s3.secret_access_key,
      RABBITMQ_HOST: rabbit.hostname,
      RABBITMQ_PORT: rabbit.port || '5672',
      RABBITMQ_USER: decodeURIComponent(rabbit.username),
      RABBITMQ_PASSWORD: decodeURIComponent(rabbit.password),
    };
    const te = services['text-extraction'];
    const env = {
      ...te.environment,
      ...hosts,
      MARIE_STORAGE_ROOTS: join(ROOT, 'examples/ocr/samples'),
    };
    // `command` is what compose appends to the image's `marie executor`; the image's paths are
    // the app folder's here, and each replica takes a free port.
    const args = (te.command as string[])
      .map((a) => a.replace('/app/', 'apps/text-extraction/'))
      .map((a, i, all) =>
        all[i - 1] === '--port' ? '0' : all[i - 1] === '--host' ? '127.0.0.1' : a,
      );
    const replicas = Array.from({ length: te.deploy.replicas }, (_, r) =>
      runMarie(['executor', ...args], {
        env: { ...env, MARIE_WORKSPACE: join(s3.dir, `replica-${r}`), MARIE_LOG_LEVEL: 'warn' },
      }),
    );
    procs.push(...replicas);
    const addresses = (await Promise.all(replicas.map((p) => waitReady(p, 1, 90_000)))).map(
      ([line]) => line!.slice('ready '.length),
    );
    const gateway = runMarie(['flow', '--uses', 'apps/gateway/config.yml'], {
      env: {
        ...services.gateway.environment,
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_GRPC_PORT: '0',
        GATEWAY_HTTP_PORT: '0',
        TEXT_EXTRACTION_ADDRESSES: addresses.join(','),
      },
    });
    procs.push(gateway);
    const lines = await waitReady(gateway, 2, 60_000);
    gatewayHttp = lines.find((l) => l.startsWith('ready http://'))!.slice('ready '.length);
  }, 180_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    const exits = await Promise.all(procs.map((p) => p.exited));
    await Promise.all([db?.drop(), s3?.destroy()]);
    // Every process of the stack stops cleanly on SIGTERM.
    expect(exits.map((e) => e.code)).toEqual(procs.map(() => 0));
  });

  it('OCRs the sample through the gateway: text, job record, OCR JSON in S3, events in RabbitMQ', async () => {
    const api = `stack-${process.pid}`;
    const conn = await amqp.connect(rabbit.href);
    const ch = await conn.createChannel();
    await ch.assertExchange(`${api}.events`, 'topic', { durable: true });
    await ch.assertQueue(`${api}.all-events`, { durable: true });
    await ch.bindQueue(`${api}.all-events`, `${api}.events`, '#');
    const events: { event: string; jobid?: string; job_id?: string }[] = [];
    await ch.consume(`${api}.all-events`, (m) => {
      if (m) events.push(JSON.parse(m.content.toString()));
    });
    try {
      // examples/ocr/request.json, as the README sends it; /data is the samples folder here.
      const request = JSON.parse(
        readFileSync(join(ROOT, 'examples/ocr/request.json'), 'utf8').replace(
          '/data/',
          `${join(ROOT, 'examples/ocr/samples')}/`,
        ),
      );
      const jobs = ['a', 'b', 'c', 'd'].map((k) => `${request.parameters.job_id}-${k}`);
      const answers = await Promise.all(
        jobs.map(async (job_id) => {
          const res = await fetch(`${gatewayHttp}/post`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              ...request,
              parameters: {
                ...request.parameters,
                job_id,
                api_key: api,
                payload: { ...request.parameters.payload, return_ocr: true },
              },
            }),
          });
          expect(res.status).toBe(200);
          return (await res.json()) as { parameters: { __results__: Record<string, any> } };
        }),
      );
      for (const a of answers) {
        const r = a.parameters.__results__.TextExtractionExecutor;
        expect(r.status).toBe('succeeded');
        expect(r.metadata.pages).toBe('2');
        expect(r.metadata.ocr[0].text.split('\n')[0]).toBe('Delivery note 5531');
        expect(r.metadata.ocr[1].text).toContain('Inspection report');
      }
      // Job records and the documents in Postgres.
      const storage = new Storage({ psql: { enabled: true, url: db.url } });
      await storage.open();
      try {
        for (const job of jobs)
          expect((await storage.jobs.get(job))?.status, job).toBe('SUCCEEDED');
        expect((await storage.documents.byRef('scan', 'sample')).length).toBeGreaterThanOrEqual(1);
      } finally {
        await storage.close();
      }
      // The OCR JSON, one object per job in the bucket.
      const uri = answers[0]!.parameters.__results__.TextExtractionExecutor.metadata
        .assets[0] as string;
      expect(uri).toBe(`s3://${dotenv.S3_BUCKET}/results/scan/${jobs[0]}.json`);
      const s3c = new S3Client({
        endpoint: s3.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
      const obj = await s3c.send(
        new GetObjectCommand({ Bucket: dotenv.S3_BUCKET, Key: `results/scan/${jobs[0]}.json` }),
      );
      const json = JSON.parse(await obj.Body!.transformToString());
      expect(json.map((p: { meta: { page: number } }) => p.meta.page)).toEqual([0, 1]);
      s3c.destroy();
      // Events for every job reached RabbitMQ (through the executor's durable outbox).
      const deadline = Date.now() + 20_000;
      const jobsSeen = () =>
        new Set(events.map((e) => e.jobid ?? e.job_id).filter((j) => jobs.includes(j!)));
      while (jobsSeen().size < jobs.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect([...jobsSeen()].sort()).toEqual([...jobs].sort());
    } finally {
      await ch.deleteQueue(`${api}.all-events`).catch(() => {});
      await conn.close();
    }
  }, 180_000);
});
