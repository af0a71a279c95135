import { describe, expect, it } from 'vitest';
import { parseSubmission, queueOf } from './submission.js';

// What the job API's fuzz test found Postgres or pg-boss refusing with a 500: each is now a 422
// naming the field.
describe('parseSubmission', () => {
  const fails = (body: unknown) => {
    try {
      parseSubmission(body);
    } catch (err) {
      return err as { code: string; field: string; message: string };
    }
    throw new Error(`accepted ${JSON.stringify(body)}`);
  };

  it('refuses an endpoint pg-boss cannot name a queue after', () => {
    expect(fails({ endpoint: '/up]er' })).toMatchObject({
      code: 'invalid_argument',
      field: 'endpoint',
    });
    expect(queueOf(parseSubmission({ endpoint: '/document/extract-v2' }))).toBe(
      'document.extract-v2',
    );
  });

  it('refuses U+0000 in text fields and anywhere in parameters, naming where', () => {
    expect(fails({ endpoint: '/x', idempotency_key: 'a\u0000b' })).toMatchObject({
      field: 'idempotency_key',
    });
    expect(fails({ endpoint: '/x', ref_id: '\u0000' }).field).toBe('ref_id');
    expect(
      fails({ endpoint: '/x', parameters: { a: [{ b: 'ok' }, { c: 'x\u0000' }] } }),
    ).toMatchObject({
      field: 'parameters.a[1].c',
      message: 'parameters.a[1].c: contains U+0000, which Postgres cannot store',
    });
  });

  it('refuses integers beyond what Postgres stores', () => {
    for (const field of ['priority', 'retry_delay', 'expire_in', 'start_after'])
      expect(fails({ endpoint: '/x', [field]: 1e308 }).field, field).toBe(field);
    expect(parseSubmission({ endpoint: '/x', priority: 2 ** 31 - 1 }).priority).toBe(2 ** 31 - 1);
  });
});
