import type { RequestHeader, Route, Status } from '@marie/core';
import { StatusCode } from '@marie/core';
import type { HeaderProto, RouteProto, StatusProto } from './generated/jina.js';

// Header, status and route: the plain objects of @marie/core and their wire messages.

export function statusToProto(status: Status): StatusProto {
  const out: StatusProto = { code: status.code, description: status.description };
  if (status.exception) out.exception = { ...status.exception };
  return out;
}

export function statusFromProto(status: StatusProto): Status {
  const out: Status = {
    code: status.code === StatusCode.ERROR ? StatusCode.ERROR : StatusCode.SUCCESS,
    description: status.description,
  };
  if (status.exception) {
    const { name, args, stacks, executor } = status.exception;
    out.exception = { name, args, stacks, executor };
  }
  return out;
}

export function headerToProto(header: RequestHeader): HeaderProto {
  const out: HeaderProto = { requestId: header.requestId };
  if (header.status) out.status = statusToProto(header.status);
  if (header.execEndpoint !== undefined) out.execEndpoint = header.execEndpoint;
  if (header.targetExecutor !== undefined) out.targetExecutor = header.targetExecutor;
  if (header.timeout !== undefined) out.timeout = header.timeout;
  return out;
}

export function headerFromProto(header: HeaderProto | undefined): RequestHeader {
  const out: RequestHeader = { requestId: header?.requestId ?? '' };
  if (!header) return out;
  if (header.status) out.status = statusFromProto(header.status);
  if (header.execEndpoint !== undefined) out.execEndpoint = header.execEndpoint;
  if (header.targetExecutor !== undefined) out.targetExecutor = header.targetExecutor;
  if (header.timeout !== undefined) out.timeout = header.timeout;
  return out;
}

export function routeToProto(route: Route): RouteProto {
  const out: RouteProto = { executor: route.executor };
  if (route.startTime) out.startTime = route.startTime;
  if (route.endTime) out.endTime = route.endTime;
  if (route.status) out.status = statusToProto(route.status);
  return out;
}

export function routeFromProto(route: RouteProto): Route {
  const out: Route = { executor: route.executor };
  if (route.startTime) out.startTime = route.startTime;
  if (route.endTime) out.endTime = route.endTime;
  if (route.status) out.status = statusFromProto(route.status);
  return out;
}

/**
 * Parameters as plain JSON: a google.protobuf.Value with no kind set (a broken or hostile peer)
 * unwraps to `undefined`; it becomes null in lists and disappears from objects.
 */
export function jsonOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : jsonOf(v)));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = jsonOf(v);
    return out;
  }
  return value;
}
