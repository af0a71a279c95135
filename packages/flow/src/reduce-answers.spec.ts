import { createDataRequest, type DataRequest, StatusCode } from '@marie/core';
import { describe, expect, it } from 'vitest';
import { reduceAnswers } from './index.js';

const answer = (docs: object[], results?: object, routes = ['ex']): DataRequest => ({
  header: { requestId: 'shard-answer' },
  parameters: results ? { p: 1, __results__: results } : { p: 1 },
  routes: routes.map((executor) => ({ executor })),
  docs,
});

describe('reduceAnswers (ALL polling)', () => {
  it('merges documents by id, first shard winning a field, and merges __results__', () => {
    const req = createDataRequest({ endpoint: '/x', requestId: 'r' });
    const res = reduceAnswers(req, [
      { status: 'fulfilled', value: answer([{ id: 'a', text: 'first' }, { id: 'b' }], { s0: 1 }) },
      {
        status: 'fulfilled',
        value: answer([{ id: 'a', text: 'second', extra: 1 }, { id: 'c' }], { s1: 2 }),
      },
    ]);
    expect(res.header.requestId).toBe('r');
    expect(res.docs).toEqual([{ id: 'a', text: 'first', extra: 1 }, { id: 'b' }, { id: 'c' }]);
    expect(res.parameters).toEqual({ p: 1, __results__: { s0: 1, s1: 2 } });
    expect(res.routes).toEqual([{ executor: 'ex' }]);
  });

  it('fails only when every shard failed, and otherwise counts the failures', () => {
    const req = createDataRequest({ endpoint: '/x' });
    const failedAnswer = {
      ...answer([]),
      header: { requestId: 'x', status: { code: StatusCode.ERROR, description: 'boom' } },
    };
    const some = reduceAnswers(req, [
      { status: 'rejected', reason: new Error('down') },
      { status: 'fulfilled', value: answer([{ id: 'a' }]) },
      { status: 'fulfilled', value: failedAnswer },
    ]);
    expect(some.parameters.__failed_shards__).toBe(2);
    expect(some.docs).toEqual([{ id: 'a' }]);
    expect(() => reduceAnswers(req, [{ status: 'rejected', reason: new Error('down') }])).toThrow(
      'down',
    );
    expect(
      reduceAnswers(req, [{ status: 'fulfilled', value: failedAnswer }]).header.status?.description,
    ).toBe('boom');
  });
});
