import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Marie's fault marker: why a process stopped itself (a lost GPU), left where its supervisor
 * looks: `$JINA_FAIL_DIR/<name>.<pid>.json` (default `/var/run/jina-fail`).
 */
export interface FaultMarker {
  /** Seconds since the epoch, as a float (Marie's `time.time()`). */
  ts: number;
  pid: number;
  name: string;
  reason: string;
  fail_streak: number;
  total_failures: number;
  /** The exit code the process is about to leave with. */
  exit_code?: number;
}

/** The exit code of a runtime that stopped itself after a fatal failure (EX_TEMPFAIL: restart it). */
export const EXIT_FATAL = 75;

const DEFAULT_DIR = '/var/run/jina-fail';

/** Where markers go: `$JINA_FAIL_DIR`, else Marie's `/var/run/jina-fail`. */
export function faultDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.JINA_FAIL_DIR || DEFAULT_DIR;
}

/** Where a writer falls back when the folder cannot be made (not root): readers look here too. */
export function fallbackFaultDir(): string {
  return join(tmpdir(), 'jina-fail');
}

/**
 * Writes the marker atomically (a temporary file, fsync, rename, fsync of the folder), so that a
 * reader never sees half of one. Returns its path.
 */
export function writeFaultMarker(marker: FaultMarker, dir = faultDir()): string {
  let target = dir;
  try {
    mkdirSync(target, { recursive: true });
  } catch {
    target = fallbackFaultDir();
    mkdirSync(target, { recursive: true });
  }
  const file = join(target, `${marker.name}.${marker.pid}.json`);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify(marker));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dfd = openSync(target, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some file systems cannot fsync a folder; the rename is still atomic.
  }
  return file;
}

/** The markers a process left (by pid), in the default folder and the fallback one. */
export function findFaultMarkers(
  pid: number,
  dir = faultDir(),
): { file: string; marker: FaultMarker }[] {
  const out: { file: string; marker: FaultMarker }[] = [];
  for (const d of new Set([dir, fallbackFaultDir()])) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (!n.endsWith(`.${pid}.json`)) continue;
      const file = join(d, n);
      try {
        out.push({ file, marker: JSON.parse(readFileSync(file, 'utf8')) as FaultMarker });
      } catch {
        // Not one of ours, or unreadable: leave it.
      }
    }
  }
  return out;
}

export function removeFaultMarker(file: string): void {
  rmSync(file, { force: true });
}
