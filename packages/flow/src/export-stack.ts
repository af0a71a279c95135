// The stateful parts an exported compose stack can bring along (`marie export compose
// --with-services postgres,s3,rabbitmq`): the same services as the repository's
// docker-compose.yml, their credentials in the env file, and the Flow's variables that point at
// them filled in by convention.
import { randomBytes } from 'node:crypto';
import { ConfigError } from '@marie/core';
import { isSecretName, type PlannedVariable } from './export.js';

export type StackService = 'postgres' | 's3' | 'rabbitmq';
export const STACK_SERVICES: readonly StackService[] = ['postgres', 's3', 'rabbitmq'];

export function parseStackServices(list: string): StackService[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names)
    if (!STACK_SERVICES.includes(n as StackService))
      throw new ConfigError(`--with-services: "${n}" is not one of ${STACK_SERVICES.join(', ')}`);
  return [...new Set(names)] as StackService[];
}

const secret = () => randomBytes(18).toString('base64url');

/** `${NAME}`: compose interpolates it from the env file beside the compose file. */
export const interpolate = (name: string) => `\${${name}}`;

/** The services' own settings (what their containers read), with fresh passwords. */
export function stackSettings(services: readonly StackService[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (services.includes('postgres'))
    Object.assign(out, {
      POSTGRES_USER: 'marie',
      POSTGRES_PASSWORD: secret(),
      POSTGRES_DB: 'marie',
    });
  if (services.includes('s3'))
    Object.assign(out, { S3_ACCESS_KEY: 'marie', S3_SECRET_KEY: secret(), S3_BUCKET: 'marie' });
  if (services.includes('rabbitmq'))
    Object.assign(out, { RABBITMQ_USER: 'marie', RABBITMQ_PASSWORD: secret() });
  return out;
}

/**
 * A Flow variable's value when it points at a stack service, by the usual names: `*DATABASE_URL`,
 * `POSTGRES_HOST|PORT|USER|PASSWORD|DB`, `S3_ENDPOINT(_URL)`, `S3_*`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `RABBITMQ_URL|HOST|PORT|USER|PASSWORD`. Undefined for the rest.
 */
export function stackValue(name: string, s: Record<string, string>): string | undefined {
  if (s[name] !== undefined) return s[name];
  if (s.POSTGRES_PASSWORD !== undefined) {
    const url = `postgres://${s.POSTGRES_USER}:${s.POSTGRES_PASSWORD}@postgres:5432/${s.POSTGRES_DB}`;
    if (/(^|_)(DATABASE|POSTGRES|PG|PSQL)_?URL$/.test(name)) return url;
    if (name === 'POSTGRES_HOST' || name === 'PGHOST') return 'postgres';
    if (name === 'POSTGRES_PORT' || name === 'PGPORT') return '5432';
  }
  if (s.S3_SECRET_KEY !== undefined) {
    if (/^S3_ENDPOINT(_URL)?$/.test(name) || name === 'AWS_ENDPOINT_URL_S3')
      return 'http://s3:8333';
    if (name === 'AWS_ACCESS_KEY_ID') return s.S3_ACCESS_KEY;
    if (name === 'AWS_SECRET_ACCESS_KEY') return s.S3_SECRET_KEY;
  }
  if (s.RABBITMQ_PASSWORD !== undefined) {
    if (/^(RABBITMQ|AMQP)_URL$/.test(name))
      return `amqp://${s.RABBITMQ_USER}:${s.RABBITMQ_PASSWORD}@rabbitmq:5672`;
    if (name === 'RABBITMQ_HOST') return 'rabbitmq';
    if (name === 'RABBITMQ_PORT') return '5672';
  }
  return undefined;
}

/** The compose services of the stack (SeaweedFS for S3: the `minio/minio` image is gone). */
export function stackCompose(services: readonly StackService[]): {
  services: Record<string, unknown>;
  volumes: string[];
  /** What a Flow's containers wait for. */
  dependsOn: Record<string, { condition: string }>;
} {
  const out: Record<string, unknown> = {};
  const volumes: string[] = [];
  const dependsOn: Record<string, { condition: string }> = {};
  if (services.includes('postgres')) {
    out.postgres = {
      image: 'postgres:17.6-bookworm',
      environment: {
        POSTGRES_USER: interpolate('POSTGRES_USER'),
        POSTGRES_PASSWORD: interpolate('POSTGRES_PASSWORD'),
        POSTGRES_DB: interpolate('POSTGRES_DB'),
      },
      volumes: ['pgdata:/var/lib/postgresql/data'],
      healthcheck: {
        test: ['CMD-SHELL', 'pg_isready -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'],
        interval: '5s',
        timeout: '3s',
        retries: 12,
      },
      restart: 'unless-stopped',
    };
    volumes.push('pgdata');
    dependsOn.postgres = { condition: 'service_healthy' };
  }
  if (services.includes('s3')) {
    out.s3 = {
      image: 'chrislusf/seaweedfs:3.80',
      environment: {
        S3_ACCESS_KEY: interpolate('S3_ACCESS_KEY'),
        S3_SECRET_KEY: interpolate('S3_SECRET_KEY'),
      },
      // The S3 identity is written from the environment, then the server runs in the shell's
      // place, so that SIGTERM reaches it.
      entrypoint: ['/bin/sh', '-c'],
      command: [
        `printf '{"identities":[{"name":"marie","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' "$$S3_ACCESS_KEY" "$$S3_SECRET_KEY" > /tmp/s3.json && exec weed server -dir=/data -ip.bind=0.0.0.0 -s3 -s3.port=8333 -s3.config=/tmp/s3.json`,
      ],
      volumes: ['s3data:/data'],
      healthcheck: {
        test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:9333/cluster/status'],
        interval: '5s',
        timeout: '3s',
        retries: 12,
      },
      restart: 'unless-stopped',
    };
    out['s3-buckets'] = {
      image: 'chrislusf/seaweedfs:3.80',
      entrypoint: ['/bin/sh', '-c'],
      command: [
        `echo "s3.bucket.create -name ${interpolate('S3_BUCKET')}" | weed shell -master=s3:9333`,
      ],
      depends_on: { s3: { condition: 'service_healthy' } },
      restart: 'no',
    };
    volumes.push('s3data');
    dependsOn['s3-buckets'] = { condition: 'service_completed_successfully' };
  }
  if (services.includes('rabbitmq')) {
    out.rabbitmq = {
      image: 'rabbitmq:4.1-management',
      environment: {
        RABBITMQ_DEFAULT_USER: interpolate('RABBITMQ_USER'),
        RABBITMQ_DEFAULT_PASS: interpolate('RABBITMQ_PASSWORD'),
      },
      volumes: ['rabbitdata:/var/lib/rabbitmq'],
      healthcheck: {
        test: ['CMD', 'rabbitmq-diagnostics', '-q', 'ping'],
        interval: '10s',
        timeout: '5s',
        retries: 12,
      },
      restart: 'unless-stopped',
    };
    volumes.push('rabbitdata');
    dependsOn.rabbitmq = { condition: 'service_healthy' };
  }
  return { services: out, volumes, dependsOn };
}

/** One line of an env file: a variable, its value, and why it is empty when it is. */
export interface EnvLine {
  name: string;
  value: string;
  secret: boolean;
  note?: string;
}

/**
 * The variables an exported Flow needs, with values: a stack service's (fresh credentials,
 * URLs pointing at it), else `values` (the exporting environment: configuration always, secrets
 * only when asked), else empty with a note to fill it in.
 */
export function envLines(
  variables: readonly PlannedVariable[],
  options: {
    values?: Record<string, string | undefined>;
    secretValues?: boolean;
    stack?: Record<string, string>;
  } = {},
): EnvLine[] {
  const stack = options.stack ?? {};
  const lines: EnvLine[] = Object.entries(stack)
    .filter(([name]) => !variables.some((v) => v.name === name))
    .map(([name, value]) => ({ name, value, secret: isSecretName(name), note: 'stack service' }));
  for (const v of variables) {
    const fromStack = stackValue(v.name, stack);
    const given = v.secret && !options.secretValues ? undefined : options.values?.[v.name];
    const value = fromStack ?? given;
    lines.push({
      name: v.name,
      value: value ?? '',
      secret: v.secret,
      ...(value === undefined
        ? { note: v.secret ? 'secret: set it (not copied from the environment)' : 'set it' }
        : fromStack !== undefined
          ? { note: 'stack service' }
          : {}),
    });
  }
  return lines;
}
