// The steps of the example pipeline (`npm start`): clean the text, count its words, keep the result.
import { Executor, type RequestContext, requests } from '@marie/core';
import { type DocList, type DocOf, defineDoc, Type } from '@marie/docs';
import { withStorage } from '@marie/storage';

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

/**
 * The third step keeps what the pipeline produced: Marie's StorageMixin as `withStorage`, on an
 * in-process Postgres (PGlite) unless the YAML points it at a server. Requests carrying `job_id`
 * get a job record (RUNNING, then SUCCEEDED or FAILED).
 */
export class Archive extends withStorage(Executor) {
  @requests({ requestSchema: Line })
  async archive(docs: DocList<Line>, { parameters }: RequestContext) {
    const ref = String(parameters.ref_id ?? 'example');
    const stored = docs.map((d) => ({ id: d.id, content: { text: d.text }, tags: d.tags }));
    await this.store(ref, 'pipeline', 'content', stored);
  }

  /** The job record of `parameters.of` and the rows stored under `parameters.ref_id`. */
  @requests({ on: '/archive/job', requestSchema: Line })
  async job(_docs: DocList<Line>, { parameters }: RequestContext) {
    const rec = await this.storage.jobs.get(String(parameters.of));
    const rows = await this.storage.documents.byRef(String(parameters.ref_id), 'pipeline');
    return [
      {
        text: rec?.status ?? 'NONE',
        tags: { rows: rows.length, target: this.storage.database.target },
      },
    ];
  }
}
