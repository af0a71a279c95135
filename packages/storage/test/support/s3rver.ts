// A real S3-compatible server for tests: s3rver (npm) in a child process, since its paginated
// listings need node's --openssl-legacy-provider. Stoppable and restartable on the same folder.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgres.js';

export interface TestS3 {
  endpoint: string;
  /** `storage.s3` for it. */
  s3: {
    endpoint_url: string;
    access_key_id: string;
    secret_access_key: string;
    region: string;
    addressing_style: 'path';
  };
  dir: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');

export async function startS3(buckets: string[] = ['marie']): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 'marie-s3-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = [
      '--openssl-legacy-provider',
      bin,
      '-d',
      dir,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '--silent',
    ];
    for (const b of buckets) args.push('--configure-bucket', b);
    child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    // s3rver prints nothing when --silent: wait until the port answers.
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`s3rver exited: ${err}`);
      const ok = await fetch(`http://127.0.0.1:${port}/`).then(
        () => true,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`s3rver did not answer on ${port}: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    s3: {
      endpoint_url: endpoint,
      access_key_id: 'S3RVER',
      secret_access_key: 'S3RVER',
      region: 'us-east-1',
      addressing_style: 'path',
    },
    dir,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
