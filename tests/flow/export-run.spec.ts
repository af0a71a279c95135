import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@marie/client';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXPORT_FIXTURE as FIXTURE, marieExport } from '../support/export.js';
import { type MarieProcess, portOf, runMarie, waitReady } from '../support/marie-process.js';

const running: MarieProcess[] = [];
afterAll(() => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

/** A service's command with the container's fixed port and interface swapped for local ones. */
const local = (command: string[]) =>
  command.map((arg, i) =>
    command[i - 1] === '--port' ? '0' : command[i - 1] === '--host' ? '127.0.0.1' : arg,
  );

describe('an exported Flow runs from its own commands', () => {
  it('executors as `marie executor`, the gateway as `marie gateway` with the graph and addresses', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'marie-export-run-')), 'side.txt');
    const out = mkdtempSync(join(tmpdir(), 'marie-export-run-out-'));
    // The Flow's directory is where the image would hold it; here, the fixtures themselves.
    const res = await marieExport(['compose', FIXTURE, out, '--flow-dir', dirname(FIXTURE)], {
      MARKER: marker,
    });
    expect(res.code, res.stderr).toBe(0);
    const services = parse(readFileSync(join(out, 'docker-compose.yml'), 'utf8'))
      .services as Record<
      string,
      {
        command: string[];
        deploy?: { replicas: number };
        environment?: Record<string, string>;
        env_file?: string[];
      }
    >;

    // The env file's variables, which services with `env_file` read.
    const envFile = Object.fromEntries(
      readFileSync(join(out, '.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // Every replica of every executor service, as Docker would start them.
    const ports = new Map<string, string[]>();
    const starting: Promise<void>[] = [];
    for (const [name, s] of Object.entries(services)) {
      if (name === 'gateway') continue;
      for (let r = 0; r < (s.deploy?.replicas ?? 1); r++) {
        const p = runMarie(local(s.command), {
          env: {
            ...(s.env_file ? envFile : {}),
            ...s.environment,
            MARIE_WORKSPACE: mkdtempSync(join(tmpdir(), 'marie-ws-')),
            HOME: mkdtempSync(join(tmpdir(), 'marie-home-')),
          },
        });
        running.push(p);
        starting.push(
          waitReady(p, 1, 60_000).then(([line]) => {
            ports.set(name, [...(ports.get(name) ?? []), `grpc://127.0.0.1:${portOf(line!)}`]);
          }),
        );
      }
    }
    await Promise.all(starting);
    expect(ports.get('c')).toHaveLength(2);

    // The gateway's addresses name services (`dns:///c:8080`); here each becomes its replicas.
    const g = local(services.gateway!.command);
    const at = g.indexOf('--deployments-addresses') + 1;
    g[at] = g[at]!.replace(/"dns:\/\/\/([a-z0-9-]+):8080"/g, (_, svc: string) =>
      ports
        .get(svc)!
        .map((a) => JSON.stringify(a))
        .join(','),
    );
    expect(JSON.parse(g[at]!).c).toEqual([ports.get('c')]);
    const gateway = runMarie([...g, '--host', '127.0.0.1']);
    running.push(gateway);
    const [grpcLine, httpLine] = await waitReady(gateway, 2, 60_000);

    const grpc = new Client({ host: `grpc://127.0.0.1:${portOf(grpcLine!)}` });
    const http = new Client({ host: `http://127.0.0.1:${portOf(httpLine!)}` });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? http : grpc).post('/index', [
          { id: `inv-${i}`, tags: { kind: 'invoice' } },
          { id: `memo-${i}`, tags: { kind: 'memo' } },
        ]),
      ),
    );
    for (const [i, docs] of answers.entries()) {
      const tags = (id: string) =>
        (docs as unknown as { id: string; tags: Record<string, unknown> }[])
          .filter((d) => d.id === id)
          .map((d) => d.tags);
      // The join ran without reduce: its docs held the invoice twice (from b and from c) and
      // the memo once, 3 in all. The two ALL-polled shards tagged them, and their answers were
      // reduced by id, where the first invoice (b's) wins.
      expect(tags(`inv-${i}`)).toEqual([
        { kind: 'invoice', a: true, b: true, joined: [1, 2], seen: 3, sharded: true },
      ]);
      expect(tags(`memo-${i}`)).toEqual([
        { kind: 'memo', a: true, c: true, joined: [1, 2], seen: 3, sharded: true },
      ]);
    }
    grpc.close();
    http.close();

    // The floating executor saw every request.
    for (let i = 0; i < 100 && !(existsSync(marker) && lines(marker) >= 20); i++) await sleep(50);
    expect(lines(marker)).toBe(20);

    // SIGTERM: the gateway, then every executor, exits 0.
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    for (const p of running) p.child.kill('SIGTERM');
    for (const p of running) expect((await p.exited).code).toBe(0);
  });

  it('marie gateway names a bad flag and exits 2; an executor that never answers fails start-up', async () => {
    const graph = JSON.stringify({ 'start-gateway': ['a'], a: ['end-gateway'] });
    const bad = runMarie(['gateway', '--graph-description', '{', '--deployments-addresses', '{}']);
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toMatch(/--graph-description: .*JSON/);
    const unknown = runMarie([
      'gateway',
      '--graph-description',
      graph,
      '--deployments-addresses',
      '{"a":["127.0.0.1:1"],"b":["127.0.0.1:2"]}',
    ]);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stderr()).toMatch(/"b", not in the graph/);
    const address = runMarie([
      'gateway',
      '--graph-description',
      graph,
      '--deployments-addresses',
      '{"a":["http://127.0.0.1:1"]}',
    ]);
    expect((await address.exited).code).toBe(2);
    expect(address.stderr()).toMatch(/a\.addresses: "http:\/\/127\.0\.0\.1:1" is not grpc/);
    const absent = runMarie([
      'gateway',
      '--graph-description',
      graph,
      '--deployments-addresses',
      '{"a":["127.0.0.1:1"]}',
      '--timeout-ready',
      '300',
      '--port',
      '0',
    ]);
    expect((await absent.exited).code).toBe(1);
    expect(absent.stderr()).toMatch(/a\/shard-0\/replica-0 \(127\.0\.0\.1:1\) is not ready/);
  });
});

function lines(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
}
