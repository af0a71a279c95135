import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  executorArgs,
  type MarieProcess,
  ROOT,
  runMarie,
  waitReady,
} from '../support/marie-process.js';

// curl as an independent HTTP client, taking the Python HTTP client's steps against `marie
// executor --protocol http`.
describe('curl calls `marie executor --protocol http` as the Python HTTP client does', () => {
  let marie: MarieProcess;
  let base: string;

  beforeAll(async () => {
    marie = runMarie(
      executorArgs(join(ROOT, 'tests/conformance/reference.yml'), { protocols: ['http'] }),
    );
    base = (await waitReady(marie))[0]!.slice('ready '.length);
  });
  afterAll(async () => {
    marie?.child.kill('SIGTERM');
    await marie?.exited;
  });

  it('GET /openapi.json, then POST /<endpoint>', async () => {
    const { stdout } = await promisify(execFile)(join(import.meta.dirname, 'http_peer.sh'), [
      base,
      '/upper',
    ]);
    expect(stdout.trim().split('\n')).toEqual([
      'path: /upper',
      'status: 200',
      'texts: HELLO,CURL',
      'request_id: curl-1',
      'routes: ref',
      'bad input status: 422',
    ]);
  });

  it('falls back to /default for an endpoint the server does not list', async () => {
    const { stdout } = await promisify(execFile)(join(import.meta.dirname, 'http_peer.sh'), [
      base,
      '/not-listed',
    ]);
    expect(stdout).toContain('path: /default');
    expect(stdout).toContain('status: 200');
    expect(stdout).toContain('texts: hello,curl');
  });
});
