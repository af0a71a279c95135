#!/usr/bin/env node
// The `marie` command. npm links bins when it installs, before anything is built, and skips a bin
// whose file does not exist yet: so the bin is this committed file, not dist/bin.js. In a clone
// that has not been built yet it runs the TypeScript sources through tsx (a dev dependency there).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/bin.js', import.meta.url);
const src = new URL('../src/bin.ts', import.meta.url);

if (existsSync(dist) || !existsSync(src)) {
  await import(dist.href);
} else {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@marie/source',
      '--import',
      import.meta.resolve('tsx'),
      fileURLToPath(src),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit' },
  );
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
