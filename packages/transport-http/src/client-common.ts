import {
  type DataRequest,
  injectContext,
  type MarieError,
  type PostOptions,
  throwIfError,
} from '@marie/core';
import { AnyDoc, type AnyDocType, DocList, type TSchema } from '@marie/docs';
import { docsJson } from './json-wire.js';

// What the HTTP and WebSocket clients share: answers to DocLists, request bodies and headers.

export type { PostOptions } from '@marie/core';

function remote(res: DataRequest): MarieError | undefined {
  try {
    throwIfError(res);
  } catch (err) {
    return err as MarieError;
  }
  return undefined;
}

/** Collects answers into one DocList, following continueOnError and resultsInOrder. */
export function collect<R extends AnyDocType>(
  answers: DataRequest[],
  options: PostOptions<R>,
): DocList<R['static']> {
  const out: object[] = [];
  for (const a of answers) {
    const err = remote(a);
    if (err) {
      if (!options.continueOnError) throw err;
      options.onError?.(err);
      continue;
    }
    out.push(...(a.docs as object[]));
    options.onDone?.({
      requestId: a.header.requestId,
      parameters: a.parameters,
      docs: a.docs as object[],
    });
  }
  return new DocList((options.responseSchema ?? AnyDoc) as R & { static: object }, out as never);
}

export function bodyOf(req: DataRequest<any>, schema?: TSchema): Record<string, unknown> {
  const header: Record<string, unknown> = { request_id: req.header.requestId };
  if (req.header.targetExecutor) header.target_executor = req.header.targetExecutor;
  return {
    data: docsJson(req.docs, schema),
    parameters: req.parameters,
    header,
    exec_endpoint: req.header.execEndpoint ?? '/default',
  };
}

/** A request's headers: `base`, the active trace context (W3C traceparent) and the API key, if any. */
export function requestHeaders(
  apiKey: string | undefined,
  base: Record<string, string> = {},
): Record<string, string> {
  const headers = { ...base };
  injectContext((key, value) => {
    headers[key] = value;
  });
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}
