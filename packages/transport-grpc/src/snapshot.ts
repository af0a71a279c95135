import type * as grpc from '@grpc/grpc-js';
import type { Logger, Processor } from '@marie/core';
import { jina } from '@marie/proto';
import { SERVICES, serverDefinition } from './definitions.js';

const SNAPSHOT = jina.SnapshotStatusProto_Status;
const RESTORE = jina.RestoreSnapshotStatusProto_Status;

/**
 * JinaExecutorSnapshot, JinaExecutorRestore and their progress services (spec/wire.md): a
 * snapshot or restore runs to its end within the call, and the progress services answer for the
 * last one by its id. A processor without `snapshot` answers NOT_FOUND, without `restore` FAILED.
 */
export function addSnapshotServices(
  server: grpc.Server,
  processor: Pick<Processor, 'snapshot' | 'restore'>,
  logger: Logger,
): void {
  let lastSnapshot: jina.SnapshotStatusProto | undefined;
  let lastRestore: jina.RestoreSnapshotStatusProto | undefined;

  server.addService(serverDefinition(SERVICES.snapshot), {
    snapshot: async (_call: unknown, callback: grpc.sendUnaryData<jina.SnapshotStatusProto>) => {
      const id = { value: `snapshot-${Date.now()}` };
      if (typeof processor.snapshot !== 'function')
        return callback(null, { id, status: SNAPSHOT.NOT_FOUND, snapshotFile: '' });
      try {
        lastSnapshot = { id, status: SNAPSHOT.SUCCEEDED, snapshotFile: await processor.snapshot() };
      } catch (err) {
        logger.error({ err }, 'snapshot failed');
        lastSnapshot = { id, status: SNAPSHOT.FAILED, snapshotFile: '' };
      }
      callback(null, lastSnapshot);
    },
  });
  server.addService(serverDefinition(SERVICES.snapshotProgress), {
    snapshot_status: (
      call: grpc.ServerUnaryCall<jina.SnapshotId, unknown>,
      callback: grpc.sendUnaryData<jina.SnapshotStatusProto>,
    ) => {
      const known = lastSnapshot && lastSnapshot.id?.value === call.request.value;
      callback(
        null,
        known ? lastSnapshot! : { id: call.request, status: SNAPSHOT.NOT_FOUND, snapshotFile: '' },
      );
    },
  });
  server.addService(serverDefinition(SERVICES.restore), {
    restore: async (
      call: grpc.ServerUnaryCall<jina.RestoreSnapshotCommand, unknown>,
      callback: grpc.sendUnaryData<jina.RestoreSnapshotStatusProto>,
    ) => {
      const id = { value: `restore-${Date.now()}` };
      if (typeof processor.restore !== 'function')
        return callback(null, { id, status: RESTORE.FAILED });
      try {
        await processor.restore(call.request.snapshotFile);
        lastRestore = { id, status: RESTORE.SUCCEEDED };
      } catch (err) {
        logger.error({ err }, 'restore failed');
        lastRestore = { id, status: RESTORE.FAILED };
      }
      callback(null, lastRestore);
    },
  });
  server.addService(serverDefinition(SERVICES.restoreProgress), {
    restore_status: (
      call: grpc.ServerUnaryCall<jina.RestoreId, unknown>,
      callback: grpc.sendUnaryData<jina.RestoreSnapshotStatusProto>,
    ) => {
      const known = lastRestore && lastRestore.id?.value === call.request.value;
      callback(null, known ? lastRestore! : { id: call.request, status: RESTORE.NOT_FOUND });
    },
  });
}
