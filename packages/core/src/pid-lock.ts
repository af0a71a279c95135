import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Takes a lock file holding this process's pid (for folders one process may own: an embedded
 * database, an event spool). A lock left by a process that is gone is taken over; one held by a
 * live process throws `inUse(pid)`. Returns the release.
 */
export function acquirePidLock(file: string, inUse: (owner: number) => string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(file, 'utf8'));
      if (owner && owner !== process.pid && alive(owner)) throw new Error(inUse(owner));
      rmSync(file, { force: true });
    }
  }
  throw new Error(`${file}: cannot take the lock`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
