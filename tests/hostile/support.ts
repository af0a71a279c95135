// Clients that misbehave on purpose, over raw sockets: what an attacker would send, byte by byte.
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';

export interface RawResult {
  /** The status line's code, if an answer came. */
  status?: number;
  /** The answer's body (after the head), if any. */
  body: string;
  /** When the server closed the connection, ms after it opened (undefined: still open at the end). */
  closedAfterMs?: number;
}

/**
 * Opens a TCP connection, sends `parts` one after another `everyMs` apart (stopping once the
 * server closed), and waits until the server closes or `waitMs` passes.
 */
export function rawRequest(
  port: number,
  parts: readonly (string | Buffer)[],
  options: { everyMs?: number; waitMs?: number } = {},
): Promise<RawResult> {
  const { everyMs = 0, waitMs = 10_000 } = options;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let data = '';
    let closedAfterMs: number | undefined;
    const socket = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      clearTimeout(deadline);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({
        ...(m ? { status: Number(m[1]) } : {}),
        body: data.split('\r\n\r\n').slice(1).join('\r\n\r\n'),
        ...(closedAfterMs !== undefined ? { closedAfterMs } : {}),
      });
    };
    const deadline = setTimeout(finish, waitMs);
    socket.on('data', (c) => {
      data += c.toString();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closedAfterMs = Date.now() - started;
      finish();
    });
    socket.on('connect', () => {
      let i = 0;
      const next = () => {
        if (i >= parts.length || socket.destroyed || closedAfterMs !== undefined) return;
        socket.write(parts[i++]!);
        timer = setTimeout(next, everyMs);
      };
      next();
    });
    socket.on('lookup', (err) => err && reject(err));
  });
}

/** A head sent one byte at a time. */
export function bytesOf(text: string): string[] {
  return [...text];
}

/** Opens a socket and keeps it, sending nothing. */
export function idleSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** One HTTP/2 session to a gRPC server, with what the server said when it went away. */
export function h2Session(port: number): {
  session: http2.ClientHttp2Session;
  goaway: () => { code: number; data: string } | undefined;
  closed: Promise<void>;
} {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  let seen: { code: number; data: string } | undefined;
  session.on('goaway', (code, _last, data) => {
    seen = { code, data: data?.toString() ?? '' };
  });
  session.on('error', () => {});
  const closed = new Promise<void>((r) => session.once('close', () => r()));
  return { session, goaway: () => seen, closed };
}

/** Prometheus text -> the value of one series (`name{labels}`), 0 when absent. */
export function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
