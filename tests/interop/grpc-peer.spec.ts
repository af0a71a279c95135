import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';

// Debian's /usr/bin/python3 with python3-grpcio and python3-protobuf (installed by .ci/run), and
// protoc for the message classes: an implementation of gRPC that shares no code with ours.
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
const protoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
const missing =
  probe.status !== 0
    ? `python3-grpcio/python3-protobuf: ${probe.stderr?.trim()}`
    : protoc.status !== 0
      ? 'protoc (protobuf-compiler)'
      : '';
if (missing && process.env.CI)
  throw new Error(`interop test needs ${missing}; .ci/run installs it`);

const run = promisify(execFile);

describe.skipIf(missing !== '')('a Python gRPC peer calls `marie executor`', () => {
  let marie: MarieProcess;
  let address: string;
  let generated: string;

  beforeAll(async () => {
    generated = mkdtempSync(join(tmpdir(), 'marie-py-'));
    mkdirSync(join(generated, 'grpc', 'health', 'v1'), { recursive: true });
    await run('protoc', [
      `-I${join(ROOT, 'protos')}`,
      `-I${join(ROOT, 'node_modules/@grpc/reflection/build/proto')}`,
      '-I/usr/include',
      `--python_out=${generated}`,
      'docarray.proto',
      'jina.proto',
      'grpc/health/v1/health.proto',
      'grpc/reflection/v1alpha/reflection.proto',
    ]);
    marie = runMarie([
      'executor',
      '--uses',
      join(ROOT, 'tests/conformance/reference.yml'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ]);
    address = (await waitReady(marie))[0]!.replace('ready grpc://', '');
  });

  afterAll(async () => {
    marie?.child.kill('SIGTERM');
    await marie?.exited;
  });

  it('health, reflection, process_single_data, docs_bytes, tensors, errors, discovery, idle keepalive', async () => {
    const { stdout } = await run(
      PYTHON,
      [join(import.meta.dirname, 'grpc_peer.py'), generated, address],
      { timeout: 60_000 },
    );
    const seen = JSON.parse(stdout);
    expect(seen.health).toBe('SERVING');
    expect(seen.services).toEqual(
      expect.arrayContaining([
        'grpc.health.v1.Health',
        'jina.JinaDataRequestRPC',
        'jina.JinaDiscoverEndpointsRPC',
        'jina.JinaInfoRPC',
        'jina.JinaRPC',
        'jina.JinaSingleDataRequestRPC',
        'jina.JinaSingleDocumentRequestRPC',
      ]),
    );
    expect(seen.length).toEqual({
      request_id: 'py-1',
      status: 0,
      routes: ['ref'],
      docs: [
        { id: 'a'.repeat(32), id_type: 'id', text: 'hello', length: 5, length_kind: 'integer' },
        { id: 'b'.repeat(32), id_type: 'id', text: 'marie', length: 5, length_kind: 'integer' },
      ],
      is_error: null,
    });
    expect(seen.tensor).toEqual({
      status: 0,
      note: 'float32[2x3]',
      values: [0.5, 1.5, -2, 3.25, 4, 5.5],
      shape: [2, 3],
      dtype: '<f4',
      type: 'ndarray',
    });
    expect(seen.error).toEqual({
      code: 1,
      description: 'ValueError: cannot process 1 documents',
      name: 'ValueError',
      args: ['cannot process 1 documents'],
      executor: 'ReferenceExecutor',
      has_stack: true,
      is_error: 'true',
    });
    expect(seen.discovery.endpoints).toEqual(
      expect.arrayContaining(['/upper', '/length', '/default', '/typed', '_jina_dry_run_']),
    );
    expect(seen.discovery.length_output).toBe('Length');
    expect(seen.discovery.length_required).toEqual(['text', 'length']);
    expect(seen.discovery.typed_parameters).toEqual(['job_id']);
    expect(seen.after_idle).toBe(0);
  }, 90_000);

  it("calls a Flow gateway's JinaRPC/Call and dry_run", async () => {
    const pgDir = mkdtempSync(join(tmpdir(), 'marie-example-pg-'));
    const flow = runMarie(['flow', '--uses', join(ROOT, 'examples/pipeline/pipeline.yml')], {
      env: { MARIE_WORKSPACE: pgDir },
    });
    try {
      const gateway = (await waitReady(flow, 1, 60_000))[0]!.replace('ready grpc://', '');
      const { stdout } = await run(
        PYTHON,
        [join(import.meta.dirname, 'gateway_peer.py'), generated, gateway],
        { timeout: 60_000 },
      );
      expect(JSON.parse(stdout)).toEqual({
        answers: [0, 1, 2].map((i) => ({
          id: `py-${i}`,
          text: `python peer ${i}`,
          routes: ['gateway', 'cleaner', 'counter', 'archive'],
        })),
        dry_run: 0,
      });
    } finally {
      flow.child.kill('SIGTERM');
      await flow.exited;
      rmSync(pgDir, { recursive: true, force: true });
    }
  }, 90_000);
});
