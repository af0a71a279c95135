import {
  createDataRequest,
  type DataRequest,
  type RequestHeader,
  type Route,
  type Status,
  StatusCode,
} from '@marie/core';
import {
  AnyDoc,
  DocList,
  DocValidationError,
  isPlainObject,
  type TSchema,
  toJsonValue,
} from '@marie/docs';

// The JSON shape of requests and answers on HTTP and WebSocket `json` (spec/wire.md): the body is
// `{ data, parameters, header: { request_id, target_executor } }`, camelCase keys accepted, like
// protobuf's JSON mapping that Python peers use.

export interface JsonBody {
  data?: unknown;
  parameters?: unknown;
  header?: unknown;
  exec_endpoint?: unknown;
  execEndpoint?: unknown;
  target_executor?: unknown;
  targetExecutor?: unknown;
}

function pick(obj: Record<string, unknown>, snake: string, camel: string): unknown {
  return obj[snake] ?? obj[camel];
}

/**
 * A DataRequest from a JSON body. `endpoint` is the path's (POST /<endpoint>); `/post` passes
 * undefined and the body names it. Throws a DocValidationError naming the field at fault.
 */
export function requestFromJson(body: unknown, endpoint?: string): DataRequest {
  if (!isPlainObject(body)) throw new DocValidationError('body', 'expected a JSON object');
  const header = body.header === undefined || body.header === null ? {} : body.header;
  if (!isPlainObject(header)) throw new DocValidationError('header', 'expected an object');
  const execEndpoint =
    endpoint ??
    pick(body, 'exec_endpoint', 'execEndpoint') ??
    pick(header, 'exec_endpoint', 'execEndpoint');
  if (execEndpoint !== undefined && typeof execEndpoint !== 'string')
    throw new DocValidationError('exec_endpoint', 'expected a string');
  const requestId = pick(header, 'request_id', 'requestId');
  if (requestId !== undefined && typeof requestId !== 'string')
    throw new DocValidationError('header.request_id', 'expected a string');
  const target =
    pick(body, 'target_executor', 'targetExecutor') ??
    pick(header, 'target_executor', 'targetExecutor');
  if (target !== undefined && typeof target !== 'string')
    throw new DocValidationError('header.target_executor', 'expected a string');
  const parameters = body.parameters ?? {};
  if (!isPlainObject(parameters)) throw new DocValidationError('parameters', 'expected an object');
  const raw = body.data ?? [];
  // A single document is accepted as well as a list (Python's client sends either).
  const docs = Array.isArray(raw) ? raw : [raw];
  docs.forEach((d, i) => {
    if (!isPlainObject(d)) throw new DocValidationError(`data[${i}]`, 'expected a document object');
  });
  return createDataRequest({
    endpoint: (execEndpoint as string | undefined) ?? '/default',
    docs,
    parameters,
    ...(requestId ? { requestId: requestId as string } : {}),
    ...(target ? { targetExecutor: target as string } : {}),
  });
}

function statusJson(status: Status): Record<string, unknown> {
  const out: Record<string, unknown> = {
    code: status.code === StatusCode.ERROR ? 'ERROR' : 'SUCCESS',
    description: status.description,
  };
  if (status.exception) out.exception = { ...status.exception };
  return out;
}

function headerJson(header: RequestHeader): Record<string, unknown> {
  const out: Record<string, unknown> = { request_id: header.requestId };
  if (header.execEndpoint !== undefined) out.exec_endpoint = header.execEndpoint;
  if (header.targetExecutor !== undefined) out.target_executor = header.targetExecutor;
  if (header.status) out.status = statusJson(header.status);
  return out;
}

function routeJson(route: Route): Record<string, unknown> {
  const out: Record<string, unknown> = { executor: route.executor };
  if (route.startTime) out.start_time = route.startTime.toISOString();
  if (route.endTime) out.end_time = route.endTime.toISOString();
  if (route.status) out.status = statusJson(route.status);
  return out;
}

/**
 * Documents as JSON: tensors as nested lists where that is exact (the field pins the dtype, or it
 * is float32), else `{dtype, shape, data}` with base64 data; bytes as base64.
 */
export function docsJson(docs: DataRequest['docs'], schema?: TSchema): unknown[] {
  if (docs instanceof DocList) return docs.toJSON({ tensors: 'auto' });
  const toJson = toJsonValue(schema ?? AnyDoc, { tensors: 'auto' });
  return (docs as unknown[]).map(toJson);
}

/** The answer body: `{ data, parameters, header, routes }`. */
export function answerJson(res: DataRequest, schema?: TSchema): Record<string, unknown> {
  return {
    data: docsJson(res.docs, schema),
    parameters: res.parameters,
    header: headerJson(res.header),
    routes: res.routes.map(routeJson),
  };
}

/** A DataRequest from an answer body (clients). */
export function answerFromJson(body: Record<string, unknown>): DataRequest {
  const header = isPlainObject(body.header) ? body.header : {};
  const status = isPlainObject(header.status) ? header.status : undefined;
  const req: DataRequest = {
    header: { requestId: String(pick(header, 'request_id', 'requestId') ?? '') },
    parameters: isPlainObject(body.parameters) ? body.parameters : {},
    routes: (Array.isArray(body.routes) ? body.routes : []).map((r: Record<string, unknown>) => {
      const route: Route = { executor: String(r.executor ?? '') };
      const start = pick(r, 'start_time', 'startTime');
      const end = pick(r, 'end_time', 'endTime');
      if (typeof start === 'string') route.startTime = new Date(start);
      if (typeof end === 'string') route.endTime = new Date(end);
      return route;
    }),
    docs: Array.isArray(body.data) ? body.data : [],
  };
  const endpoint = pick(header, 'exec_endpoint', 'execEndpoint');
  if (typeof endpoint === 'string') req.header.execEndpoint = endpoint;
  const target = pick(header, 'target_executor', 'targetExecutor');
  if (typeof target === 'string') req.header.targetExecutor = target;
  if (status) {
    const code =
      status.code === 'ERROR' || status.code === 1 ? StatusCode.ERROR : StatusCode.SUCCESS;
    req.header.status = { code, description: String(status.description ?? '') };
    if (isPlainObject(status.exception)) {
      const e = status.exception;
      req.header.status.exception = {
        name: String(e.name ?? ''),
        args: Array.isArray(e.args) ? e.args.map(String) : [],
        stacks: Array.isArray(e.stacks) ? e.stacks.map(String) : [],
        executor: String(e.executor ?? ''),
      };
    }
  }
  return req;
}
