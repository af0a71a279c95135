import { DocList } from '@marie/docs';
import type { DataRequest } from './data-request.js';

const MERGED_LISTS = ['chunks', 'matches'];

/**
 * Reduces several lists of documents into one by id, in first-seen order: the first document with
 * an id wins for every field it has; fields it lacks come from later ones; `chunks` and `matches`
 * lists are concatenated (Jina's reduce of `docs_matrix`).
 */
export function reduceDocs<T extends object>(matrix: readonly DocList<T>[]): DocList<T> {
  const first = matrix[0];
  if (!first) throw new TypeError('reduceDocs: nothing to reduce');
  if (matrix.length === 1) return first;
  const byId = new Map<unknown, Record<string, unknown>>();
  for (const docs of matrix) {
    for (const doc of docs as unknown as Record<string, unknown>[]) {
      const seen = byId.get(doc.id);
      if (!seen) {
        byId.set(doc.id, { ...doc });
        continue;
      }
      for (const [key, value] of Object.entries(doc)) {
        const mine = seen[key];
        if (mine === undefined || mine === null) seen[key] = value;
        else if (
          MERGED_LISTS.includes(key) &&
          Array.isArray(mine) &&
          Array.isArray(value) &&
          value.length
        ) {
          seen[key] = new DocList((mine as DocList<object>).docType as never, [...mine, ...value], {
            trusted: true,
          });
        }
      }
    }
  }
  return new DocList(first.docType as never, [...byId.values()] as T[], { trusted: true });
}

/** Joins requests (process_data): the first's header, parameters merged (earlier win), routes unioned. */
export function mergeRequests(requests: readonly DataRequest<any>[]): DataRequest<any> {
  const first = requests[0]!;
  const parameters: Record<string, unknown> = {};
  for (const r of [...requests].reverse()) Object.assign(parameters, r.parameters);
  const seen = new Set<string>();
  const routes = requests
    .flatMap((r) => r.routes)
    .filter((r) => !seen.has(r.executor) && seen.add(r.executor));
  return { header: first.header, parameters, routes, docs: first.docs };
}
