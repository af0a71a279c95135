// A user's own executor in their own image (see Dockerfile): TypeScript, run as is by the runtime
// image's tsx; nothing to build.
import { Executor, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Type } from '@marie/docs';

export const Note = defineDoc('Note', {
  text: Type.String({ default: '' }),
  tags: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
});
export type Note = DocOf<typeof Note>;

export class Shouter extends Executor {
  @requests({ requestSchema: Note })
  shout(docs: DocList<Note>) {
    for (const d of docs) d.tags = { ...d.tags, shouted: d.text.toUpperCase() };
  }
}
