import { type DataRequest, reduceDocs, StatusCode } from '@marie/core';
import { AnyDoc, DocList, isPlainObject } from '@marie/docs';
import { withDocsRead } from '@marie/proto';

/**
 * ALL polling: documents merged by id (first shard wins a field), `__results__` merged, and the
 * answer fails only when every shard failed; otherwise `parameters.__failed_shards__` counts them.
 */
export function reduceAnswers(
  req: DataRequest<any>,
  settled: PromiseSettledResult<DataRequest>[],
): DataRequest {
  const answers: DataRequest[] = [];
  let failed = 0;
  let firstError: unknown;
  for (const s of settled) {
    if (s.status === 'fulfilled' && s.value.header.status?.code !== StatusCode.ERROR)
      answers.push(withDocsRead(s.value));
    else {
      failed++;
      firstError ??= s.status === 'rejected' ? s.reason : s.value;
    }
  }
  if (answers.length === 0) {
    if (firstError instanceof Error) throw firstError;
    return firstError as DataRequest;
  }
  const docs = reduceDocs(
    answers.map((a) => new DocList(AnyDoc, a.docs as never, { trusted: true })),
  );
  const results: Record<string, unknown> = {};
  for (const a of answers) {
    const r = a.parameters.__results__;
    if (isPlainObject(r)) Object.assign(results, r);
  }
  const first = answers[0]!;
  const parameters: Record<string, unknown> = { ...first.parameters };
  if (Object.keys(results).length) parameters.__results__ = results;
  if (failed) parameters.__failed_shards__ = failed;
  const seen = new Set<string>();
  const routes = answers
    .flatMap((a) => a.routes)
    .filter((r) => !seen.has(r.executor) && seen.add(r.executor));
  return { header: { ...first.header, requestId: req.header.requestId }, parameters, routes, docs };
}
