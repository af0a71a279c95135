// The soak: 200,000 requests through a Flow (gateway + 2 replicas, `marie flow`) from gRPC, HTTP
// and WebSocket clients at once; 30% answered with an executor error, 5% cancelled by the client
// mid-request. Bounded by count, not by time. After warm-up each process's RSS grows less than
// 50 MB, open descriptors come back to where they started, every request is answered, and every
// cancelled request whose method started saw its signal. Then the same soak with one replica
// killed -9 half way: nothing hangs, and what the client sees fail is at most what was in flight.
// It takes about 6 minutes here (two cores saturated), so `npm test` runs it after the rest of the
// suite, alone: its load would otherwise skew the timing-sensitive tests beside it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@marie/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MarieProcess, portOf, runMarie, waitReady } from '../support/marie-process.js';

const TOTAL = 200_000;
/**
 * Warm-up: V8 sizes its heaps under load for a while (measured: the gateway's RSS 425 -> 563 MB
 * from 20,000 to 60,000 requests, then 567, 569, 570, 571 MB at each further 20,000).
 */
const WARMUP = 60_000;
/** Requests in flight at once, over the three protocols. */
const IN_FLIGHT = 48;
const CANCEL_AFTER_MS = 30;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'marie-soak-'));
  writeFileSync(
    join(dir, 'flow.yml'),
    `jtype: Flow
with:
  protocol: [grpc, http, websocket]
  port: [0, 0, 0]
  host: 127.0.0.1
executors:
  - name: soak
    uses: ${join(import.meta.dirname, 'fixtures/soak.yml')}
    replicas: 2
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(status(pid))![1]) / 1024;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
/** RSS in MB, or `-` for a process gone (the replica killed). */
const rssOr = (pid: number) => {
  try {
    return rssMb(pid).toFixed(0);
  } catch {
    return '-';
  }
};
/** The processes whose parent is `pid` (the Flow's replicas). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = 'work' | 'fail' | 'cancel';
/** Request i: 5% cancelled (gRPC and HTTP: a WebSocket request cannot be cancelled alone), 30% failing. */
function plan(i: number): { kind: Kind; protocol: 0 | 1 | 2 } {
  if (i % 20 === 7) return { kind: 'cancel', protocol: ((i / 20) & 1) as 0 | 1 };
  return { kind: i % 10 < 3 ? 'fail' : 'work', protocol: (i % 3) as 0 | 1 | 2 };
}

interface SoakResult {
  counts: Record<Kind | 'unexpected', number>;
  unexpected: string[];
  ms: number;
  rss: Map<number, [number, number]>;
  fds: Map<number, [number, number]>;
  cancelledTags: Set<string>;
  /** RSS (MB) of gateway/replica/replica at every 20,000 requests. */
  trace: string[];
}

async function soak(options: { kill?: boolean } = {}): Promise<SoakResult> {
  const log = join(dir, `soak-${options.kill ? 'kill' : 'plain'}.log`);
  writeFileSync(log, '');
  const flow: MarieProcess = runMarie(['flow', '--uses', join(dir, 'flow.yml')], {
    env: { SOAK_LOG: log },
  });
  try {
    const ports = (await waitReady(flow, 3, 60_000)).map(portOf);
    const gateway = flow.child.pid!;
    const replicas = childrenOf(gateway);
    expect(replicas).toHaveLength(2);
    const processes = [gateway, ...replicas];
    const address = (i: number) => `${['grpc', 'http', 'ws'][i]}://127.0.0.1:${ports[i]}`;
    // One request per protocol and replica first: the gateway's channels to the replicas are
    // open when the descriptors are counted (they stay, as a pool does).
    for (let i = 0; i < 3; i++) {
      const c = new Client({ host: address(i) });
      for (let k = 0; k < 4; k++) await c.post('/work', [{ text: 'warm' }]);
      await c.close();
    }
    await sleep(1000);
    const fds0 = new Map(processes.map((p) => [p, fds(p)]));
    const clients = [
      new Client({ host: address(0) }),
      new Client({ host: address(1) }),
      new Client({ host: address(2) }),
    ];
    const counts = { work: 0, fail: 0, cancel: 0, unexpected: 0 };
    const unexpected: string[] = [];
    const cancelledTags = new Set<string>();
    const rss0 = new Map<number, number>();
    let next = 0;
    const trace: string[] = [];
    const started = Date.now();
    const one = async (i: number) => {
      const { kind, protocol } = plan(i);
      const client = clients[protocol]!;
      try {
        if (kind === 'cancel') {
          const tag = `c${i}`;
          cancelledTags.add(tag);
          const controller = new AbortController();
          setTimeout(() => controller.abort(), CANCEL_AFTER_MS);
          await client
            .post('/hold', [{ text: tag }], { parameters: { tag }, signal: controller.signal })
            .then(
              () => {
                throw new Error('a cancelled request was answered');
              },
              (err: Error) => {
                if (!controller.signal.aborted) throw err;
              },
            );
        } else if (kind === 'fail') {
          await client
            .post('/work', [{ text: 'x' }], { parameters: { fail: true, n: i }, timeoutMs: 30_000 })
            .then(
              () => {
                throw new Error('a failing request was answered as a success');
              },
              (err: Error) => {
                if (!/asked to fail/.test(err.message)) throw err;
              },
            );
        } else {
          const docs = await client.post('/work', [{ text: `w${i}` }], { timeoutMs: 30_000 });
          if ((docs[0] as unknown as { text: string }).text !== `W${i}`)
            throw new Error(`wrong answer ${JSON.stringify(docs[0])}`);
        }
        counts[kind]++;
      } catch (err) {
        counts.unexpected++;
        if (unexpected.length < 20)
          unexpected.push(`${kind} over ${['grpc', 'http', 'ws'][protocol]}: ${err}`);
      }
    };
    const worker = async () => {
      while (next < TOTAL) {
        const i = next++;
        if (i === WARMUP) for (const p of processes) rss0.set(p, rssMb(p));
        if (i % 20_000 === 0) trace.push(`${i}: ${processes.map(rssOr).join('/')}`);
        if (options.kill && i === TOTAL / 2) process.kill(replicas[0]!, 'SIGKILL');
        await one(i);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const ms = Date.now() - started;
    for (const c of clients) await c.close();
    // Descriptors: back to where they started once the clients are gone (sockets close async).
    const fds1 = new Map<number, number>();
    const alive = options.kill ? [gateway, replicas[1]!] : processes;
    const end = Date.now() + 10_000;
    for (;;) {
      for (const p of alive) fds1.set(p, fds(p));
      if (alive.every((p) => fds1.get(p)! <= fds0.get(p)!) || Date.now() > end) break;
      await sleep(200);
    }
    const rss = new Map(alive.map((p) => [p, [rss0.get(p)!, rssMb(p)] as [number, number]]));
    const fdPairs = new Map(
      alive.map((p) => [p, [fds0.get(p)!, fds1.get(p)!] as [number, number]]),
    );
    // Every cancelled request whose method started saw its signal.
    const lines = readFileSync(log, 'utf8').split('\n');
    const startedTags = new Set(lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6)));
    const aborted = new Set(lines.filter((l) => l.startsWith('abort ')).map((l) => l.slice(6)));
    const missed = [...startedTags].filter((t) => !aborted.has(t));
    if (!options.kill) {
      expect(startedTags.size).toBeGreaterThan(counts.cancel / 2);
      expect(missed).toEqual([]);
    }
    if (options.kill) {
      // The killed replica is back as a new process.
      const now = childrenOf(gateway);
      expect(now).toHaveLength(2);
      expect(now).not.toContain(replicas[0]);
    }
    return { counts, unexpected, ms, rss, fds: fdPairs, cancelledTags, trace };
  } finally {
    flow.child.kill('SIGTERM');
    await flow.exited;
  }
}

function report(label: string, r: SoakResult) {
  const mb = [...r.rss].map(([p, [a, b]]) => `${p}: ${a.toFixed(0)} -> ${b.toFixed(0)} MB`);
  const fd = [...r.fds].map(([p, [a, b]]) => `${p}: ${a} -> ${b}`);
  console.log(
    `${label}: ${TOTAL} requests in ${(r.ms / 1000).toFixed(1)} s (${((TOTAL * 1000) / r.ms).toFixed(0)}/s) ${JSON.stringify(r.counts)}; RSS after warm-up -> end ${mb.join(', ')}; fds ${fd.join(', ')}; RSS every 20,000 requests ${r.trace.join(', ')}${r.unexpected.length ? `; unexpected: ${r.unexpected.join(' | ')}` : ''}`,
  );
}

describe('soak through a Flow (gateway + 2 replicas; gRPC, HTTP and WebSocket clients)', () => {
  it(`${TOTAL} requests, 30% executor errors, 5% cancelled: memory and descriptors bounded, nothing unanswered`, async () => {
    const r = await soak();
    report('soak', r);
    expect(r.unexpected).toEqual([]);
    expect(r.counts.work + r.counts.fail + r.counts.cancel).toBe(TOTAL);
    expect(r.counts.fail / TOTAL).toBeGreaterThan(0.28);
    expect(r.counts.cancel / TOTAL).toBeCloseTo(0.05, 2);
    for (const [pid, [a, b]] of r.rss) expect(b - a, `RSS of ${pid}`).toBeLessThan(50);
    for (const [pid, [a, b]] of r.fds) expect(b, `descriptors of ${pid}`).toBeLessThanOrEqual(a);
  }, 600_000);

  it(`the same with one replica killed -9 half way: every request answered, failures at most those in flight`, async () => {
    const r = await soak({ kill: true });
    report('soak with kill -9', r);
    expect(r.counts.work + r.counts.fail + r.counts.cancel + r.counts.unexpected).toBe(TOTAL);
    expect(r.counts.unexpected).toBeLessThanOrEqual(IN_FLIGHT);
    for (const [pid, [a, b]] of r.rss) expect(b - a, `RSS of ${pid}`).toBeLessThan(50);
    for (const [pid, [a, b]] of r.fds) expect(b, `descriptors of ${pid}`).toBeLessThanOrEqual(a);
  }, 600_000);
});
