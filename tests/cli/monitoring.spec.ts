// `marie executor --monitoring`: a served executor's requests counted under Jina's metric names,
// scraped over HTTP from the port it prints.
import { join } from 'node:path';
import { Client } from '@marie/client';
import { afterAll, describe, expect, it } from 'vitest';
import { type MarieProcess, ROOT, runMarie, waitReady } from '../support/marie-process.js';

let marie: MarieProcess;
afterAll(() => {
  if (marie && marie.child.exitCode === null) marie.child.kill('SIGKILL');
});

describe('marie executor --monitoring', () => {
  it('serves /metrics with the requests it answered, and stops cleanly', async () => {
    marie = runMarie([
      'executor',
      '--uses',
      join(ROOT, 'tests/conformance/reference.yml'),
      '--name',
      'ref',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--monitoring',
      '--port-monitoring',
      '0',
    ]);
    const address = (await waitReady(marie))[0]!.slice('ready '.length);
    const line = marie
      .stdout()
      .split('\n')
      .find((l) => l.startsWith('monitoring '));
    expect(line).toMatch(/^monitoring http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const client = new Client({ host: address });
    for (let i = 0; i < 3; i++) await client.post('/upper', [{ text: `t${i}` }, { text: 'x' }]);
    client.close();
    const text = await (await fetch(line!.slice('monitoring '.length))).text();
    const value = (prefix: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(prefix))
          ?.split(' ')
          .at(-1),
      );
    expect(value('jina_successful_requests_total{runtime_name="ref"}')).toBe(3);
    expect(value('jina_failed_requests_total{runtime_name="ref"}')).toBe(0);
    expect(
      value(
        'jina_document_processed_total{executor="ReferenceExecutor",executor_endpoint="/upper",runtime_name="ref"}',
      ),
    ).toBe(6);
    expect(
      value('jina_receiving_request_seconds_count{runtime_name="ref"}'),
    ).toBeGreaterThanOrEqual(3);
    marie.child.kill('SIGTERM');
    expect(await marie.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
