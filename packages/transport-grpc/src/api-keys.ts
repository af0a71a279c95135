import * as grpc from '@grpc/grpc-js';
import { ApiKeys } from '@marie/core';

/** Calls that need no key: health checks (orchestrators probe without one). */
const OPEN_METHODS = new Set(['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Watch']);

/**
 * Refuses a call without one of the keys (`authorization: Bearer <key>` metadata) as soon as its
 * metadata arrives, before its message is read; health checks stay open.
 */
export function apiKeyInterceptor(keys: ApiKeys): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const header = metadata.get('authorization')[0];
            if (
              OPEN_METHODS.has(method.path) ||
              keys.accepts(
                ApiKeys.fromAuthorization(typeof header === 'string' ? header : undefined),
              )
            )
              return pass(metadata);
            call.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details: 'missing or unknown API key (send authorization: Bearer <key>)',
            });
          },
        }),
    });
}
