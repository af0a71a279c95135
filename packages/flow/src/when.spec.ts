import { describe, expect, it } from 'vitest';
import { matches } from './index.js';
import { validateCondition } from './when.js';

const doc = { id: '1', text: 'hello', tags: { key: 5, kind: 'invoice', nested: { deep: true } } };

describe('when conditions', () => {
  it('compares fields and nested tags with the operators Jina uses', () => {
    expect(matches(doc, { tags__key: { $eq: 5 } })).toBe(true);
    expect(matches(doc, { tags__key: 5 })).toBe(true);
    expect(matches(doc, { tags__key: { $gte: 5, $lte: 5 } })).toBe(true);
    expect(matches(doc, { tags__key: { $gt: 5 } })).toBe(false);
    expect(matches(doc, { tags__kind: { $in: ['memo', 'invoice'] } })).toBe(true);
    expect(matches(doc, { tags__kind: { $nin: ['invoice'] } })).toBe(false);
    expect(matches(doc, { tags__nested__deep: { $eq: true } })).toBe(true);
    expect(matches(doc, { tags__missing: { $exists: false } })).toBe(true);
    expect(matches(doc, { text: { $exists: true } })).toBe(true);
    expect(matches(doc, { $or: [{ tags__key: 1 }, { text: 'hello' }] })).toBe(true);
    expect(matches(doc, { $and: [{ tags__key: 5 }, { text: 'bye' }] })).toBe(false);
  });

  it('refuses an unknown operator when the flow is built', () => {
    expect(() => validateCondition({ tags__key: { $equals: 5 } }, 'b.when')).toThrow(
      'b.when.tags__key: unknown operator $equals',
    );
    expect(() => validateCondition({ $or: { a: 1 } }, 'b.when')).toThrow(
      'b.when.$or: expected a list of conditions',
    );
  });

  it('reads JSONPath keys through objects and lists, and refuses what it does not support', () => {
    const ctx = { nodes: { c: { output: { kind: 'invoice', items: [{ label: 'a b' }] } } } };
    expect(matches(ctx, { '$.nodes.c.output.kind': 'invoice' })).toBe(true);
    expect(matches(ctx, { "$.nodes.c.output.items[0]['label']": { $eq: 'a b' } })).toBe(true);
    expect(matches(ctx, { '$.nodes.c.output.items[3].label': { $exists: false } })).toBe(true);
    expect(matches(ctx, { '$.nodes.x.output': { $exists: true } })).toBe(false);
    expect(() => validateCondition({ '$.nodes[*].output': 1 }, 'b.when')).toThrow(
      'b.when: $.nodes[*].output: only plain steps (.name, [0], [\'name\']) are supported, not "[*].output"',
    );
  });
});
