import { Executor, RequestHandler, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Embedding, NdArray, Type } from '@marie/docs';

const Sentence = defineDoc('Sentence', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding({ dtype: 'float32' })),
});
type Sentence = DocOf<typeof Sentence>;

class LetterCounter extends Executor {
  @requests({ on: '/embed', requestSchema: Sentence })
  embed(docs: DocList<Sentence>) {
    for (const doc of docs) {
      const counts = [...'aeiou'].map((v) => [...doc.text].filter((c) => c === v).length);
      doc.embedding = new NdArray(Float32Array.from(counts));
    }
  }
}

const handler = new RequestHandler(new LetterCounter());
const docs = await handler.post<Sentence>('/embed', [
  { text: 'hello marie' },
  { text: 'documents' },
]);
for (const doc of docs) console.log(doc.text, '->', doc.embedding?.toList());
