import { describe, expect, it } from 'vitest';
import { parseJobsConfig, parseQueues } from './service.js';

const DB = 'postgres://marie@db:5432/marie';

describe("a Flow's jobs: section", () => {
  it('reads queues in every written form, with defaults for the rest', () => {
    const c = parseJobsConfig(
      { database: DB, queues: { '/document/extract': 2, pages: {} } },
      'jobs',
      {},
    );
    expect(c).toMatchObject({
      database: DB,
      schema: 'pgboss',
      queues: { 'document.extract': { concurrency: 2 }, pages: { concurrency: 1 } },
      records: true,
      ui: true,
      endpoint: '/document/extract',
      poolSize: 10,
    });
    expect(parseQueues(['a=3', 'b'])).toEqual({ a: { concurrency: 3 }, b: { concurrency: 1 } });
    expect(parseJobsConfig({}, 'jobs', { MARIE_JOBS_DATABASE_URL: DB }).database).toBe(DB);
  });

  it('names the key that is wrong, and never prints a password', () => {
    const bad = (raw: unknown, env = {}) => {
      try {
        parseJobsConfig(raw, 'jobs', env);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(bad({})).toMatch(/^jobs\.database: give a postgres:\/\/ URL/);
    expect(bad({ database: 'mysql://u:secret@h/db' })).not.toContain('secret');
    expect(bad({ database: DB, queue: {} })).toMatch(/^jobs\.queue: unknown key/);
    expect(bad({ database: DB, queues: { a: 0 } })).toMatch(/^jobs\.queues\.a: concurrency 0/);
    expect(bad({ database: DB, queues: ['a b'] })).toMatch(
      /^jobs\.queues\[0\]: "a b" is not a queue/,
    );
    expect(bad({ database: DB, pool_size: 1 })).toMatch(/^jobs\.pool_size/);
    expect(bad({ database: DB, ui: 'yes' })).toMatch(/^jobs\.ui: expected true or false/);
    expect(bad({ database: DB, supervise_interval: 0.5 })).toMatch(/^jobs\.supervise_interval/);
  });
});
