import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFlow } from './load-flow.js';

function flowFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'marie-load-flow-')), 'flow.yml');
  writeFileSync(file, yaml);
  return file;
}

describe('loadFlow', () => {
  it("reads Jina's keys: external executors, no_reduce, image, the flow name", async () => {
    const flow = await loadFlow(
      flowFile(`jtype: Flow
with: { name: ocr-flow, protocol: http, port: 8080 }
executors:
  - { name: ocr, external: true, host: ocr.internal, port: 8080 }
  - { name: merge, uses: Merge, needs: [gateway, ocr], no_reduce: true, image: acme/merge:2 }
`),
    );
    expect(flow.options).toMatchObject({ name: 'ocr-flow', protocol: ['http'], port: [8080] });
    expect(flow.executors[0]).toMatchObject({
      name: 'ocr',
      external: true,
      addresses: 'ocr.internal:8080',
    });
    expect(flow.executors[1]).toMatchObject({ noReduce: true, image: 'acme/merge:2' });
    expect(flow.graph().description).toEqual({
      'start-gateway': ['ocr', 'merge'],
      ocr: ['merge'],
      merge: ['end-gateway'],
    });
  });

  it('takes the protocol spellings every command takes, one port per protocol', async () => {
    const flow = await loadFlow(
      flowFile(
        'jtype: Flow\nwith: { protocol: [GRPC, ws, http, grpc] }\nexecutors: [{ name: a, uses: A }]\n',
      ),
    );
    expect(flow.options.protocol).toEqual(['grpc', 'websocket', 'http']);
    await expect(
      loadFlow(
        flowFile('jtype: Flow\nwith: { protocol: smtp }\nexecutors: [{ name: a, uses: A }]\n'),
      ),
    ).rejects.toThrow(/with\.protocol smtp: unknown \(grpc, http, websocket\)/);
    await expect(
      loadFlow(
        flowFile(
          'jtype: Flow\nwith: { protocol: [grpc, http], port: [8080] }\nexecutors: [{ name: a, uses: A }]\n',
        ),
      ),
    ).rejects.toThrow(/with\.port: give one port per protocol \(2 protocols, 1 port\)/);
  });

  it('names the executor and the key that is wrong', async () => {
    await expect(
      loadFlow(flowFile('jtype: Flow\nexecutors:\n  - { name: a, external: true }\n')),
    ).rejects.toThrow(/executors\[0\] is external: give host and port/);
    await expect(
      loadFlow(flowFile('jtype: Flow\nexecutors:\n  - { name: a, uses: A, port: 1 }\n')),
    ).rejects.toThrow(/executors\[0\]\.port is not a flow executor key/);
    await expect(loadFlow(flowFile('jtype: Flow\nexecutors:\n  - { name: a }\n'))).rejects.toThrow(
      /executors\[0\] needs a name and uses \(or external\)/,
    );
  });

  it('reads the operations keys of with: and of each executor, naming a wrong one', async () => {
    const flow = await loadFlow(
      flowFile(
        'jtype: Flow\nwith: { monitoring: true, port_monitoring: "9090", tracing: true, traces_exporter_host: otel, max_docs_per_request: 50, request_timeout: 0, headers_timeout: 5000, min_ping_interval: 0 }\nexecutors:\n  - { name: a, uses: A, monitoring: true, port_monitoring: 9100, reload: true }\n',
      ),
    );
    expect(flow.options).toMatchObject({
      monitoring: true,
      portMonitoring: 9090,
      tracing: true,
      tracesExporterHost: 'otel',
      limits: {
        maxDocsPerRequest: 50,
        requestTimeoutMs: 0,
        headersTimeoutMs: 5000,
        minPingIntervalMs: 0,
      },
    });
    // Only what the YAML gives: the gateway's defaults fill the rest (and exports pass no more).
    expect(flow.options.limits?.maxRequestBytes).toBeUndefined();
    expect(flow.executors[0]).toMatchObject({
      monitoring: true,
      portMonitoring: 9100,
      reload: true,
    });
    await expect(
      loadFlow(
        flowFile('jtype: Flow\nexecutors:\n  - { name: a, uses: A, monitoring: yes-please }\n'),
      ),
    ).rejects.toThrow(/executors\[0\]\.monitoring: "yes-please" is not true or false/);
    await expect(
      loadFlow(
        flowFile(
          'jtype: Flow\nwith: { port_monitoring: 70000 }\nexecutors:\n  - { name: a, uses: A }\n',
        ),
      ),
    ).rejects.toThrow(/with\.port_monitoring: 70000 is not a port/);
    await expect(
      loadFlow(
        flowFile(
          'jtype: Flow\nwith: { max_docs_per_request: 0 }\nexecutors:\n  - { name: a, uses: A }\n',
        ),
      ),
    ).rejects.toThrow(/with\.max_docs_per_request: 0 is not a positive whole number/);
    await expect(
      loadFlow(
        flowFile(
          'jtype: Flow\nwith: { ssl_certfile: nowhere.pem, ssl_keyfile: k.pem }\nexecutors:\n  - { name: a, uses: A }\n',
        ),
      ),
    ).rejects.toThrow(/with\.ssl_certfile: cannot read nowhere\.pem/);
  });
});
