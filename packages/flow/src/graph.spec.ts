import { describe, expect, it } from 'vitest';
import { describeGraph, END, graphNodes, parseGraph, START } from './graph.js';

describe('flow graph', () => {
  const executors = [
    { name: 'split' },
    { name: 'left', needs: 'split' },
    { name: 'right', needs: 'split', when: { tags__kind: { $eq: 'invoice' } } },
    { name: 'audit', needs: 'split', floating: true },
    { name: 'join', needs: ['left', 'right'] },
  ];

  it("writes Jina's graph description: edges to the nodes that take each answer", () => {
    expect(describeGraph(executors)).toEqual({
      description: {
        [START]: ['split'],
        split: ['left', 'right', 'audit'],
        left: ['join'],
        right: ['join'],
        audit: [],
        join: [END],
      },
      conditions: { right: { tags__kind: { $eq: 'invoice' } } },
    });
  });

  it('reads it back as gateway nodes: needs, conditions, floating', () => {
    const graph = parseGraph(JSON.parse(JSON.stringify(describeGraph(executors))).description, {
      right: { tags__kind: { $eq: 'invoice' } },
    });
    expect(graphNodes(graph)).toEqual([
      { name: 'split', needs: ['gateway'] },
      { name: 'left', needs: ['split'] },
      { name: 'right', needs: ['split'], when: { tags__kind: { $eq: 'invoice' } } },
      { name: 'audit', needs: ['split'], floating: true },
      { name: 'join', needs: ['left', 'right'] },
    ]);
  });

  it('orders nodes by their needs whatever order the JSON lists them in', () => {
    const graph = parseGraph({ b: [END], a: ['b'], [START]: ['a'] });
    expect(graphNodes(graph).map((n) => n.name)).toEqual(['a', 'b']);
  });

  it('names what is wrong', () => {
    expect(() => describeGraph([{ name: 'a' }, { name: 'a' }])).toThrow(/two executors.*"a"/);
    expect(() => describeGraph([{ name: 'a', needs: 'b' }])).toThrow(/"a" needs "b"/);
    expect(() => describeGraph([{ name: 'a', floating: true }])).toThrow(/every executor/);
    expect(() => describeGraph([{ name: 'a', when: { x: { $near: 1 } } as never }])).toThrow(
      /a\.when/,
    );
    expect(() => parseGraph({ a: [END] })).toThrow(/no "start-gateway"/);
    expect(() => parseGraph({ [START]: ['a'] })).toThrow(/"a", which is not a node/);
    expect(() => graphNodes(parseGraph({ [START]: [], a: [END] }))).toThrow(/not reached/);
    expect(() => graphNodes(parseGraph({ [START]: ['a'], a: ['b'], b: ['a'] }))).toThrow(
      /cycle among a, b/,
    );
    expect(() => parseGraph({ [START]: ['a'], a: [END] }, { b: {} })).toThrow(/"b", which/);
  });
});
