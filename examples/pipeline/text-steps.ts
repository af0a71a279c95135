// The two steps of the example pipeline (`npm start`): clean the text, then count its words.
import { Executor, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Type } from '@marie/docs';

export const Line = defineDoc('Line', {
  text: Type.String({ default: '' }),
  tags: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
});
export type Line = DocOf<typeof Line>;

export class Cleaner extends Executor {
  @requests({ requestSchema: Line })
  clean(docs: DocList<Line>) {
    for (const d of docs) d.text = d.text.trim().replace(/\s+/g, ' ').toLowerCase();
  }
}

export class WordCounter extends Executor {
  @requests({ requestSchema: Line })
  count(docs: DocList<Line>) {
    for (const d of docs)
      d.tags = { ...d.tags, words: d.text ? d.text.split(' ').length : 0, counted_by: process.pid };
  }
}
