import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import { createDataRequest, DRY_RUN_ENDPOINT, type Processor, StatusCode } from '@marie/core';
import { type jina, statusToProto } from '@marie/proto';
import { SERVICES, serverDefinition } from './definitions.js';

const require = createRequire(import.meta.url);
const VERSION: string = require('../package.json').version;
const GRPC_JS: string = require('@grpc/grpc-js/package.json').version;

/**
 * endpoint_discovery (the listing with its JSON Schemas), dry_run (the processor's dry-run
 * endpoint as a StatusProto) and _status (versions, the runtime's kind and name, and the
 * MARIE_* and JINA_* variables), as spec/wire.md has them.
 */
export function addInfoServices(
  server: grpc.Server,
  processor: Processor,
  fail: (err: unknown) => grpc.ServiceError,
): void {
  server.addService(serverDefinition(SERVICES.discovery), {
    endpoint_discovery: (_call: unknown, callback: grpc.sendUnaryData<jina.EndpointsProto>) => {
      const { endpoints, writeEndpoints, schemas } = processor.endpoints();
      callback(null, { endpoints, writeEndpoints, schemas: schemas as Record<string, unknown> });
    },
  });

  server.addService(serverDefinition(SERVICES.dryRun), {
    dry_run: (_call: unknown, callback: grpc.sendUnaryData<jina.StatusProto>) => {
      processor.handle(createDataRequest({ endpoint: DRY_RUN_ENDPOINT })).then(
        (res) =>
          callback(
            null,
            statusToProto(res.header.status ?? { code: StatusCode.SUCCESS, description: '' }),
          ),
        (err: unknown) => callback(fail(err)),
      );
    },
  });

  server.addService(serverDefinition(SERVICES.info), {
    _status: (_call: unknown, callback: grpc.sendUnaryData<jina.JinaInfoProto>) => {
      const envs: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env))
        if (/^(MARIE|JINA)_/.test(k) && v !== undefined) envs[k] = v;
      callback(null, {
        jina: {
          marie: VERSION,
          'marie-runtime': 'typescript',
          node: process.version,
          'grpc-js': GRPC_JS,
          executor: processor.kind,
          name: processor.name,
        },
        envs,
      });
    },
  });
}
