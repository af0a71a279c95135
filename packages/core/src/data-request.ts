import { type DocList, newDocId, type TSchema } from '@marie/docs';
import { ErrorCode, MarieError, type RemoteException } from './errors.js';

/** StatusProto.StatusCode (spec/wire.md). */
export const StatusCode = { SUCCESS: 0, ERROR: 1 } as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

export interface Status {
  code: StatusCode;
  description: string;
  exception?: RemoteException;
}

export interface RequestHeader {
  requestId: string;
  /** The endpoint to call; `/default` when left out. */
  execEndpoint?: string;
  /** A regex matched against deployment names (the gateway routes by it). */
  targetExecutor?: string;
  status?: Status;
  /** Deadline in milliseconds (HeaderProto.timeout). */
  timeout?: number;
}

export interface Route {
  executor: string;
  startTime?: Date;
  endTime?: Date;
  status?: Status;
}

/**
 * A request as every transport hands it to the core, and gets it back: DataRequestProto as a plain
 * object. `docs` is a DocList, or plain documents (parsed JSON) the handler validates against the
 * endpoint's document type.
 */
export interface DataRequest<D extends object = Record<string, unknown>> {
  header: RequestHeader;
  parameters: Record<string, unknown>;
  routes: Route[];
  docs: DocList<D> | readonly unknown[];
  /**
   * The documents still serialized (a DocListProto), as a gateway forwards them without reading
   * them and an executor reads them when its method first uses them; `docs` is empty while this
   * is set. Only a Processor with `passesDocsThrough` gets these.
   */
  docsBytes?: Uint8Array;
}

/** One document in, for generator endpoints (SingleDocumentRequestProto). */
export interface SingleDocumentRequest<D extends object = Record<string, unknown>> {
  header: RequestHeader;
  parameters: Record<string, unknown>;
  routes: Route[];
  document: D | Record<string, unknown>;
  /**
   * The document's type, where the processor that answered knows it (an executor's endpoint): a
   * transport encodes by it. Local only, never on the wire.
   */
  docType?: TSchema;
}

export interface DataRequestInit<D extends object = Record<string, unknown>> {
  endpoint?: string;
  docs?: DocList<D> | readonly unknown[];
  parameters?: Record<string, unknown>;
  requestId?: string;
  targetExecutor?: string;
}

/** A new request with a fresh request id. */
export function createDataRequest<D extends object = Record<string, unknown>>(
  init: DataRequestInit<D> = {},
): DataRequest<D> {
  const header: RequestHeader = {
    requestId: init.requestId ?? newDocId(),
    execEndpoint: init.endpoint ?? '/default',
  };
  if (init.targetExecutor !== undefined) header.targetExecutor = init.targetExecutor;
  return { header, parameters: init.parameters ?? {}, routes: [], docs: init.docs ?? [] };
}

/** The status a thrown value becomes: code ERROR and the exception's name, args and stack lines. */
export function errorStatus(error: unknown, executor: string): Status {
  const err = error instanceof Error ? error : new Error(String(error));
  const remote = err instanceof MarieError ? err.remote : undefined;
  if (remote) return { code: StatusCode.ERROR, description: err.message, exception: remote };
  const name = exceptionName(err);
  const args = err.message === '' ? [] : [err.message];
  return {
    code: StatusCode.ERROR,
    description: args.length ? `${name}: ${err.message}` : name,
    exception: { name, args, stacks: stackLines(err), executor },
  };
}

function exceptionName(err: Error): string {
  if (err instanceof MarieError && err.code === ErrorCode.InvalidArgument) {
    const cause = err.cause;
    return cause instanceof Error ? cause.name : 'ValidationError';
  }
  return err.name || err.constructor.name || 'Error';
}

function stackLines(err: Error): string[] {
  return (err.stack ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Throws the request's error status as a MarieError carrying the remote exception. */
export function throwIfError(req: Pick<DataRequest, 'header'>): void {
  const status = req.header.status;
  if (status?.code !== StatusCode.ERROR) return;
  const ex = status.exception;
  throw new MarieError(ErrorCode.Unknown, status.description || ex?.name || 'remote error', {
    ...(ex ? { remote: ex } : {}),
  });
}
