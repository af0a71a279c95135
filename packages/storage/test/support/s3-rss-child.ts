// Streams a 200 MB object up to S3 and back down to a file, then reports the process's peak RSS:
// run as its own process so that the number is this work's, not the test runner's.
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { StorageManager } from '../../src/index.js';

const [endpoint, dir] = process.argv.slice(2) as [string, string];
const size = Number(process.env.MB ?? 200) * 1024 * 1024;
const chunk = Buffer.alloc(1 << 20, 42);
let sent = 0;
const body = new Readable({
  read() {
    if (sent >= size) return this.push(null);
    sent += chunk.length;
    this.push(chunk);
  },
});
const s = new StorageManager({
  s3: {
    endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
    region: 'us-east-1',
    partSize: Number(process.env.PART ?? 8388608),
  },
  file: { roots: [dir] },
});
const baseMB = Math.round(process.resourceUsage().maxRSS / 1024);
const t0 = performance.now();
await s.write('s3://marie/rss/200mb.bin', body);
const up = performance.now() - t0;
const file = join(dir, 'down.bin');
await s.readToFile('s3://marie/rss/200mb.bin', file);
const upPeakMB = Math.round(process.resourceUsage().maxRSS / 1024);
const down = performance.now() - t0 - up;
let bytes = 0;
for await (const c of createReadStream(file)) bytes += (c as Buffer).length;
await rm(file);
await s.close();
console.log(
  JSON.stringify({
    baseMB,
    upPeakMB,
    bytes,
    upMs: Math.round(up),
    downMs: Math.round(down),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
