// The reference executor of the conformance suite: one endpoint per behaviour every transport must
// carry unchanged (spec/wire.md).
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamicBatching, Executor, type RequestContext, requests } from '@marie/core';
import { DocList, type DocOf, defineDoc, type LegacyDocument, Tensor, Type } from '@marie/docs';

export class ValueError extends Error {
  override name = 'ValueError';
}

export const TextIn = defineDoc('TextIn', {
  text: Type.String({ default: '' }),
  tags: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
});
export type TextIn = DocOf<typeof TextIn>;
export const Length = defineDoc('Length', { text: Type.String(), length: Type.Integer() });
export const TensorDoc = defineDoc('TensorDoc', {
  tensor: Tensor(),
  note: Type.String({ default: '' }),
});
export type TensorDoc = DocOf<typeof TensorDoc>;

export const TypedParams = Type.Object(
  { job_id: Type.String(), threshold: Type.Number({ default: 0.5 }) },
  { title: 'TypedParams' },
);

export class ReferenceExecutor extends Executor {
  batches: number[] = [];

  @requests({ on: '/upper', requestSchema: TextIn })
  upper(docs: DocList<TextIn>) {
    for (const d of docs) d.text = d.text.toUpperCase();
  }

  @requests({ on: '/length', requestSchema: TextIn, responseSchema: Length })
  length(docs: DocList<TextIn>) {
    return new DocList(
      Length,
      docs.map((d) => ({ id: d.id, text: d.text, length: d.text.length })),
    );
  }

  @requests
  fallback(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    for (const d of docs) d.tags = { ...d.tags, endpoint: ctx.endpoint };
  }

  @requests({ on: '/params' })
  params(_docs: DocList<LegacyDocument>, ctx: RequestContext) {
    return { seen: ctx.parameters };
  }

  @requests({ on: '/typed', parametersSchema: TypedParams })
  typed(
    _docs: DocList<LegacyDocument>,
    ctx: RequestContext<{ job_id: string; threshold: number }>,
  ) {
    return { job_id: ctx.parameters.job_id, threshold: ctx.parameters.threshold };
  }

  @requests({ on: '/fail' })
  fail(docs: DocList<LegacyDocument>) {
    throw new ValueError(`cannot process ${docs.length} documents`);
  }

  @requests({ on: '/slow', requestSchema: TextIn })
  async slow(docs: DocList<TextIn>, ctx: RequestContext) {
    await sleep(Number(ctx.parameters.delay ?? 0));
    for (const d of docs) d.tags = { ...d.tags, delay: ctx.parameters.delay };
  }

  @requests({ on: '/batch', requestSchema: TextIn })
  @dynamicBatching({ preferredBatchSize: 4, timeoutMs: 200 })
  batch(docs: DocList<TextIn>) {
    this.batches.push(docs.length);
    for (const d of docs) d.tags = { ...d.tags, batch: docs.length };
  }

  @requests({ on: '/words', requestSchema: TextIn })
  async *words(doc: TextIn) {
    for (const word of doc.text.split(/\s+/).filter(Boolean)) yield { text: word };
  }

  @requests({ on: '/tensor', requestSchema: TensorDoc })
  tensor(docs: DocList<TensorDoc>) {
    for (const d of docs) d.note = `${d.tensor.dtype}[${d.tensor.shape.join('x')}]`;
  }
}

export class NoDefaultExecutor extends Executor {
  @requests({ on: '/only' })
  only() {
    return { called: true };
  }
}
