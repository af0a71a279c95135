import { constants, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import type { ConnectionStats, Logger, ServerLimits } from '@marie/core';

/**
 * What a gRPC client may hold, as grpc-js and Node's HTTP/2 bound it, and the rest enforced here
 * on each HTTP/2 session:
 * - concurrent streams per connection (`maxConcurrentPerConnection`, SETTINGS, grpc-js);
 * - idle connections and connection age with a grace period (grpc-js's GOAWAY);
 * - stream-reset floods (CVE-2023-44487): nghttp2 closes a session whose peer resets more than
 *   `maxResetsPerSecond` streams a second (as many again in a burst). Node's own default, 33 a
 *   second past a burst of 1000, cut a legitimate client here: one that cancels 5% of its calls
 *   at ~1,000 calls a second lost its connection, and every call on it, after a minute
 *   (tests/hostile/soak.spec.ts). The sessions that nghttp2 closes are counted here;
 * - pings: one sooner than `minPingIntervalMs` after the last, with no call opened between them,
 *   is a strike; the third strike answers GOAWAY ENHANCE_YOUR_CALM `too_many_pings` (gRPC core's
 *   policy; Python peers' keepalive every ~10 s and their BDP pings beside calls pass);
 * - connections past `maxConnections`: GOAWAY at once (clients see UNAVAILABLE and back off).
 */
export function grpcServerOptions(limits: ServerLimits): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentPerConnection,
    ...(limits.maxConnectionIdleMs
      ? { 'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs }
      : {}),
    ...(limits.maxConnectionAgeMs
      ? {
          'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
          'grpc.max_connection_age_grace_ms': limits.maxConnectionAgeGraceMs,
        }
      : {}),
  };
}

const STRIKES = 2;

/**
 * Sets what grpc-js does not pass on to the HTTP/2 servers it makes (call before binding): the
 * stream-reset rate. grpc-js keeps the options it gives `http2.createServer` in a field of its
 * own, read here; a grpc-js without it is refused loudly, as in `guardSessions`.
 */
export function tuneHttp2(server: grpc.Server, limits: ServerLimits): void {
  const common = (server as unknown as { commonServerOptions?: unknown }).commonServerOptions;
  if (typeof common !== 'object' || common === null)
    throw new Error(
      'this @grpc/grpc-js keeps no commonServerOptions: the stream-reset limit cannot be set (pin @grpc/grpc-js 1.14)',
    );
  Object.assign(common, {
    streamResetBurst: limits.maxResetsPerSecond,
    streamResetRate: limits.maxResetsPerSecond,
  });
}

/**
 * Watches every session of the HTTP/2 servers grpc-js opened for `server` (call after each
 * bind). grpc-js exposes no hook for sessions: its own map of servers is read, and a grpc-js
 * without one is refused loudly rather than left unguarded.
 */
export function guardSessions(
  server: grpc.Server,
  limits: ServerLimits,
  stats: ConnectionStats,
  logger: Logger,
): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map))
    throw new Error(
      'this @grpc/grpc-js keeps no http2Servers map: connection limits cannot be enforced (pin @grpc/grpc-js 1.14)',
    );
  for (const h2 of servers.keys() as Iterable<Http2Server & { [GUARDED]?: true }>) {
    if (h2[GUARDED]) continue;
    h2[GUARDED] = true;
    h2.on('session', (session: ServerHttp2Session) => guard(session, limits, stats, logger));
  }
}

const GUARDED = Symbol('marie.guarded');

function guard(
  session: ServerHttp2Session,
  limits: ServerLimits,
  stats: ConnectionStats,
  logger: Logger,
): void {
  let failed = false;
  session.once('close', () => {
    stats.closed();
    if (failed) stats.cut('http2_error');
  });
  session.on('error', (err) => {
    failed = true;
    logger.debug({ err }, 'HTTP/2 session failed');
  });
  if (stats.opened() > limits.maxConnections) {
    stats.cut('max_connections');
    refuse(session, 'too_many_connections');
    return;
  }
  const min = limits.minPingIntervalMs;
  if (!min) return;
  let last = Number.NEGATIVE_INFINITY;
  let strikes = 0;
  let callSince = false;
  session.on('stream', () => {
    callSince = true;
  });
  session.on('ping', () => {
    const now = performance.now();
    if (now - last < min && !callSince) strikes++;
    else strikes = 0;
    last = now;
    callSince = false;
    if (strikes > STRIKES) {
      stats.cut('too_many_pings');
      refuse(session, 'too_many_pings');
    }
  });
}

/** GOAWAY ENHANCE_YOUR_CALM with `why` as its debug data, and the session closed. */
function refuse(session: ServerHttp2Session, why: string): void {
  if (session.destroyed) return;
  try {
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from(why));
  } catch {
    // a session closing already
  }
  // The GOAWAY frame is flushed before the socket goes.
  setImmediate(() => session.destroy());
}
