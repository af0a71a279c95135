import { Executor, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Embedding, Type } from '@marie/docs';

export const BenchDoc = defineDoc('BenchDoc', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
});
export type BenchDoc = DocOf<typeof BenchDoc>;

/** The benchmark's endpoint does nothing: what is measured is the framework around it. */
export class NoopExecutor extends Executor {
  @requests({ on: '/noop', requestSchema: BenchDoc })
  noop(_docs: DocList<BenchDoc>) {}
}
