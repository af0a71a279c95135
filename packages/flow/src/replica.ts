import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Logger } from '@marie/core';
import { GrpcClient } from '@marie/transport-grpc';
import type { Upstream } from './router.js';

const require = createRequire(import.meta.url);

/** The `marie` command that runs one replica (the `marie executor` runtime of @marie/cli). */
export function marieBin(): string {
  return require.resolve('@marie/cli/bin');
}

export interface ReplicaSpec {
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutReadyMs: number;
  logger: Logger;
  label: string;
}

/**
 * One replica: a `marie executor` child process supervised by its Deployment. It is started with
 * an IPC channel, so it stops by itself when the supervisor dies, even by SIGKILL.
 */
export class Replica implements Upstream {
  readonly spec: ReplicaSpec;
  client?: GrpcClient;
  child?: ChildProcess;
  inFlight = 0;
  restarts = 0;
  /** `http://host:port/metrics` when the runtime serves metrics (`--monitoring`). */
  monitoring?: string;
  #stopping = false;
  #onExit?: (replica: Replica, code: number | null, signal: NodeJS.Signals | null) => void;

  constructor(
    spec: ReplicaSpec,
    onExit: (replica: Replica, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.spec = spec;
    this.#onExit = onExit;
  }

  get ready(): boolean {
    return this.client !== undefined && !this.#stopping;
  }

  get label(): string {
    return this.spec.label;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process and resolves once it printed `ready grpc://HOST:PORT`. */
  start(): Promise<void> {
    const child = spawn(process.execPath, [marieBin(), ...this.spec.args], {
      cwd: this.spec.cwd,
      env: this.spec.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    let stderr = '';
    let partial = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr = (stderr + text).slice(-4000);
      // The replica's log lines go on to the supervisor's stderr (a Flow's console), whole lines
      // at a time so that replicas writing at once do not interleave within a line.
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      if (lines.length) process.stderr.write(`${lines.join('\n')}\n`);
    });
    child.stderr!.on('end', () => {
      if (partial) process.stderr.write(`${partial}\n`);
    });
    return new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `${this.spec.label}: not ready after ${this.spec.timeoutReadyMs} ms: ${stderr.trim()}`,
          ),
        );
      }, this.spec.timeoutReadyMs);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /^ready grpc:\/\/([^\s]+):(\d+)$/m.exec(out);
        const metrics = /^monitoring (http:\/\/\S+)$/m.exec(out);
        if (metrics) this.monitoring = metrics[1]!.replace('//0.0.0.0:', '//127.0.0.1:');
        if (m && !this.client) {
          clearTimeout(timer);
          this.client = new GrpcClient({
            host: m[1] === '0.0.0.0' ? '127.0.0.1' : m[1]!,
            port: Number(m[2]),
            poolSize: 1,
          });
          resolve();
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        this.client?.close();
        this.client = undefined;
        if (!this.#stopping) this.#onExit?.(this, code, signal);
        reject(
          new Error(
            `${this.spec.label}: exited with ${signal ?? code} before it was ready: ${stderr.trim()}`,
          ),
        );
      });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}
