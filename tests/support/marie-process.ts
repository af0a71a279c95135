import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(import.meta.dirname, '..', '..');
export const MARIE_BIN = join(ROOT, 'packages/cli/dist/bin.js');

export interface MarieProcess {
  child: ChildProcess;
  /** The `ready PROTOCOL://HOST:PORT` lines printed so far. */
  ready: string[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the built `marie` command (plain Node, as a user would). */
export function runMarie(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; node?: string } = {},
): MarieProcess {
  const child = spawn(options.node ?? process.execPath, [MARIE_BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, MARIE_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const ready: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    ready.splice(0, ready.length, ...out.split('\n').filter((l) => l.startsWith('ready ')));
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, ready, stdout: () => out, stderr: () => err, exited };
}

/**
 * `marie executor` on loopback: `--uses`, the protocols (the runtime's default: gRPC) and their
 * ports (0: free ones), then `extra`.
 */
export function executorArgs(
  uses: string,
  options: { protocols?: readonly string[]; ports?: readonly (number | string)[] } = {},
  ...extra: string[]
): string[] {
  return [
    'executor',
    '--uses',
    uses,
    '--host',
    '127.0.0.1',
    ...(options.protocols ? ['--protocol', ...options.protocols] : []),
    '--port',
    ...(options.ports ?? [0]).map(String),
    ...extra,
  ];
}

/** Waits for `count` ready lines; rejects with the process's stderr if it exits or takes too long. */
export async function waitReady(p: MarieProcess, count = 1, timeoutMs = 20_000): Promise<string[]> {
  const started = Date.now();
  while (p.ready.length < count) {
    if (p.child.exitCode !== null)
      throw new Error(`marie exited with ${p.child.exitCode}: ${p.stderr()}`);
    if (Date.now() - started > timeoutMs) {
      p.child.kill('SIGKILL');
      throw new Error(`marie not ready after ${timeoutMs} ms: ${p.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return p.ready;
}

/** `ready grpc://127.0.0.1:1234` -> 1234 */
export function portOf(readyLine: string): number {
  return Number(/:(\d+)$/.exec(readyLine)?.[1]);
}

/** `marie ARGS...` as a user runs it to its end (60 s at most): its exit code, stdout and stderr. */
export async function marieCommand(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [MARIE_BIN, ...args], {
      env: { ...process.env, MARIE_LOG_LEVEL: 'warn', ...env },
      timeout: 60_000,
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout, err: err.stderr };
  }
}
