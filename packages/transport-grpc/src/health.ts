import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { health } from '@marie/proto';

type ServingStatus = health.HealthCheckResponse_ServingStatus;
const { SERVING, NOT_SERVING, SERVICE_UNKNOWN } = health.HealthCheckResponse_ServingStatus;

/**
 * grpc.health.v1.Health: Check and Watch per service name. Peers probe service "" (spec/wire.md);
 * every registered service name answers too.
 */
export class HealthService {
  readonly #status = new Map<string, ServingStatus>();
  readonly #watchers = new Map<
    string,
    Set<grpc.ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>>
  >();

  constructor(services: readonly string[]) {
    for (const s of ['', ...services]) this.#status.set(s, NOT_SERVING);
  }

  /** Sets every service's status (the server is one process: all serve, or none). */
  setServing(serving: boolean): void {
    for (const name of this.#status.keys()) this.#set(name, serving ? SERVING : NOT_SERVING);
  }

  #set(name: string, value: ServingStatus): void {
    this.#status.set(name, value);
    for (const call of this.#watchers.get(name) ?? []) call.write({ status: value });
  }

  get implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<health.HealthCheckRequest, health.HealthCheckResponse>,
        callback: grpc.sendUnaryData<health.HealthCheckResponse>,
      ) => {
        const value = this.#status.get(call.request.service);
        if (value === undefined)
          callback({
            code: GrpcStatus.NOT_FOUND,
            details: `unknown service "${call.request.service}"`,
          });
        else callback(null, { status: value });
      },
      Watch: (
        call: grpc.ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>,
      ) => {
        const name = call.request.service;
        call.write({ status: this.#status.get(name) ?? SERVICE_UNKNOWN });
        let set = this.#watchers.get(name);
        if (!set) this.#watchers.set(name, (set = new Set()));
        set.add(call);
        call.on('cancelled', () => set.delete(call));
      },
    };
  }

  /** Ends every Watch stream (shutdown). */
  close(): void {
    for (const set of this.#watchers.values()) for (const call of set) call.end();
    this.#watchers.clear();
  }
}
