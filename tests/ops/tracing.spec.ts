// Traces across processes: `marie post --tracing` (the client) -> `marie flow` (the gateway) ->
// its replica (the executor, with Postgres job records and job events). Each process exports its
// spans over OTLP/gRPC to a receiver here; one trace must hold spans of all three, joined by the
// traceparent that travels in gRPC metadata. The log lines of the request carry its trace id.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestDatabase, testDatabase } from '../../packages/storage/test/support/postgres.js';
import { MARIE_BIN, type MarieProcess, runMarie, waitReady } from '../support/marie-process.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp.js';

const run = promisify(execFile);
let receiver: OtlpReceiver;
let db: TestDatabase;
let dir: string;
let flow: MarieProcess | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  db = await testDatabase('marie_trace');
  dir = mkdtempSync(join(tmpdir(), 'marie-trace-'));
});
afterAll(async () => {
  if (flow && flow.child.exitCode === null) flow.child.kill('SIGKILL');
  await receiver?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tracing', () => {
  it('one trace holds the spans of the client, the gateway and the executor, with storage and events', async () => {
    const yml = join(dir, 'flow.yml');
    writeFileSync(
      yml,
      `jtype: Flow
with:
  protocol: [grpc, http]
  port: [0, 0]
  tracing: true
  traces_exporter_host: 127.0.0.1
  traces_exporter_port: ${receiver.port}
executors:
  - name: ops
    uses: ${join(import.meta.dirname, 'fixtures/ops.yml')}
jobs:
  database: "${db.url}"
  queues: { upper: 1 }
`,
    );
    const events = join(dir, 'events.jsonl');
    flow = runMarie(['flow', '--uses', yml], {
      env: {
        OPS_DATABASE_URL: db.url,
        OPS_EVENTS: events,
        MARIE_LOG_LEVEL: 'info',
        MARIE_WORKSPACE: join(dir, 'workspace'),
      },
    });
    const [ready, httpReady] = await waitReady(flow, 2, 60_000);
    const address = ready!.slice('ready '.length);

    const posted = await run(
      process.execPath,
      [
        MARIE_BIN,
        'post',
        address,
        '/upper',
        '--data',
        '[{"text":"traced"}]',
        '--parameters',
        '{"job_id":"trace-job-1","ref_id":"r1","ref_type":"trace"}',
        '--tracing',
        '--traces-exporter-host',
        '127.0.0.1',
        '--traces-exporter-port',
        String(receiver.port),
      ],
      { env: { ...process.env, MARIE_LOG_LEVEL: 'warn' } },
    );
    expect(JSON.parse(posted.stdout.trim())).toMatchObject({ text: 'TRACED' });

    // The client flushed at exit; the gateway and the executor within their export interval.
    const root = () => receiver.spans.find((s) => s.name === 'POST /upper' && s.kind === 3);
    await receiver.waitFor((spans) => {
      const r = root();
      if (!r) return false;
      const trace = spans.filter((s) => s.traceId === r.traceId);
      return (
        new Set(trace.map((s) => s.pid)).size >= 3 &&
        trace.some((s) => s.name.startsWith('postgres ')) &&
        trace.some((s) => s.name.startsWith('event '))
      );
    });
    const client = root()!;
    const trace = receiver.spans.filter((s) => s.traceId === client.traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const services = new Set(trace.map((s) => s.service));
    expect(services).toEqual(new Set(['client', 'gateway', 'ops']));
    const pids = new Set(trace.map((s) => s.pid));
    expect(pids.size).toBe(3);

    // The chain, each span the child of the one before: client -> gateway server -> hop ->
    // executor server -> the method -> its job records and events.
    const childOf = (span: { spanId: string }, name: string | RegExp) =>
      trace.find(
        (s) =>
          s.parentSpanId === span.spanId &&
          (typeof name === 'string' ? s.name === name : name.test(s.name)),
      );
    const gatewayServer = childOf(client, 'jina.JinaRPC/Call');
    expect(gatewayServer?.service).toBe('gateway');
    expect(gatewayServer?.kind).toBe(2);
    const hop = childOf(gatewayServer!, 'hop ops');
    expect(hop?.kind).toBe(3);
    const executorServer = childOf(hop!, 'jina.JinaSingleDataRequestRPC/process_single_data');
    expect(executorServer?.service).toBe('ops');
    expect(executorServer?.pid).not.toBe(gatewayServer?.pid);
    const method = childOf(executorServer!, 'OpsExecutor /upper');
    expect(method?.attributes['marie.docs']).toBe(1);
    // Job records (Postgres) and job events (the toast) happen inside the method's call.
    const below = (s: { parentSpanId: string }): boolean =>
      s.parentSpanId === method!.spanId ||
      (byId.has(s.parentSpanId) && below(byId.get(s.parentSpanId)!));
    const storage = trace.filter((s) => s.name.startsWith('postgres ') && below(s));
    expect(storage.length).toBeGreaterThan(0);
    expect(storage[0]!.attributes['db.system.name']).toBe('postgresql');
    const eventSpans = trace.filter((s) => s.name.startsWith('event ') && below(s));
    expect(eventSpans.map((s) => s.name).sort()).toEqual([
      'event ops.completed',
      'event ops.started',
    ]);

    // A job submitted with a traceparent (a caller's trace): its run, on the gateway's worker,
    // and the executor's work for it join that trace.
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const submitted = await fetch(`${httpReady!.slice('ready '.length)}/api/v1/jobs`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify({ endpoint: '/upper', ref_id: 'traced-job', ref_type: 'trace' }),
    });
    expect(submitted.status).toBe(202);
    await receiver.waitFor((spans) =>
      spans.some((s) => s.traceId === traceId && s.name === 'OpsExecutor /upper'),
    );
    const jobTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const names = new Set(jobTrace.map((s) => s.name));
    for (const name of ['POST /api/v1/jobs', 'job upper', 'hop ops', 'OpsExecutor /upper'])
      expect(names, name).toContain(name);
    expect(jobTrace.find((s) => s.name === 'job upper')!.kind).toBe(5); // consumer

    // The executor's log line of that request names the request and the trace.
    flow.child.kill('SIGTERM');
    expect(await flow.exited).toEqual({ code: 0, signal: null });
    const line = flow
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'upper-casing');
    expect(line).toMatchObject({
      trace_id: client.traceId,
      job_id: 'trace-job-1',
      component: 'ops',
    });
    expect(line!.request_id).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(events, 'utf8')).toContain('"jobid":"trace-job-1"');
  }, 90_000);
});
