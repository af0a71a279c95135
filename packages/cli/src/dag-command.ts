import type { Client } from '@marie/client';
import type { DagView } from '@marie/jobs-contract';
import { loadPlanFile, planMermaid, planText } from '@marie/pipelines';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { addClientOptions } from './client-flags.js';
import { exitWith } from './errors.js';
import { clientOf, gatewayOption, jsonFlag, print } from './jobs-command.js';
import { integer } from './parse.js';

/** Wraps a subcommand's action: its exit code, or the error as `exitWith` reports it. */
const runAs =
  (prefix: string, fn: (flags: any, ...args: string[]) => Promise<number | undefined>) =>
  async (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    try {
      process.exitCode = (await fn(cmd.optsWithGlobals(), ...(args.slice(0, -2) as string[]))) ?? 0;
    } catch (err) {
      exitWith(`${prefix} ${cmd.name()}`, err);
    }
  };

/** `marie plan validate|show FILE`: a plan checked as a gateway checks it, and drawn. */
export function planCommand(): Command {
  const plan = new Command('plan').description(
    'check and show pipeline plans (YAML, JSON, Marie plan JSON)',
  );
  const run = (fn: Parameters<typeof runAs>[1]) => runAs('marie plan', fn);
  plan
    .command('validate <file>')
    .description('check a plan: exit 0 and a summary line, or exit 1 naming the plan, node and key')
    .action(
      run(async (_flags, file) => {
        const p = await loadPlanFile(file!);
        const maps = p.nodes.filter((n) => n.kind === 'map').length;
        process.stdout.write(
          `ok: plan ${p.name} v${p.version}, ${p.nodes.length} nodes, ${Math.max(...p.nodes.map((n) => n.level)) + 1} levels${maps ? `, ${maps} maps` : ''}\n`,
        );
        return 0;
      }),
    );
  plan
    .command('show <file>')
    .description('print a plan as text and as a Mermaid graph (--format text|mermaid|both)')
    .option('--format <format>', 'text, mermaid or both', 'both')
    .action(
      run(async (flags, file) => {
        const p = await loadPlanFile(file!);
        const parts: string[] = [];
        if (flags.format !== 'mermaid') parts.push(planText(p));
        if (flags.format !== 'text') parts.push(`\`\`\`mermaid\n${planMermaid(p)}\n\`\`\``);
        process.stdout.write(`${parts.join('\n\n')}\n`);
        return 0;
      }),
    );
  return plan;
}

/** Waits for a DAG with a progress bar of nodes done / total (stderr, a terminal), then prints it. */
async function waitForDag(client: Client, id: string, timeoutMs?: number): Promise<number> {
  const bar = process.stderr.isTTY
    ? new SingleBar({
        format: 'dag {id} [{bar}] {value}/{total} nodes · {state} · {elapsed}s',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      })
    : undefined;
  const started = Date.now();
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
  bar?.start(1, 0, { id: id.slice(0, 8), state: 'waiting', elapsed: 0 });
  const tick = setInterval(() => bar?.update({ elapsed: elapsed() }), 250);
  try {
    const dag = await client.waitForDag(id, {
      ...(timeoutMs ? { timeoutMs } : {}),
      onProgress: (d: DagView) => {
        bar?.setTotal(d.nodes_total);
        bar?.update(d.nodes_done, { state: d.state, elapsed: elapsed() });
        if (!bar)
          process.stderr.write(`dag ${id}: ${d.state} (${d.nodes_done}/${d.nodes_total} nodes)\n`);
      },
    });
    bar?.stop();
    print(dag);
    return dag.state === 'completed' ? 0 : 1;
  } finally {
    clearInterval(tick);
    bar?.stop();
  }
}

/** `marie dag submit|status|list|wait|retry|cancel`: the gateway's DAG API from the command line. */
export function dagCommand(): Command {
  const dag = new Command('dag').description("run plans as DAGs on a gateway's DAG API");
  const run = (fn: Parameters<typeof runAs>[1]) => runAs('marie dag', fn);
  dag
    .command('submit <plan>')
    .description('run a plan (by name, or a plan file sent inline); prints {dag_id, created}')
    .addOption(gatewayOption())
    .option('--asset-key <key>', 'the document: a path, file:// or s3:// key')
    .option('--ref-id <id>')
    .option('--ref-type <type>')
    .option('--parameters <json>', "the plan's $.input", jsonFlag('--parameters'))
    .option('--priority <n>', '0-999, higher runs first', integer('--priority', 0))
    .option('--soft-sla <when>', 'seconds from now, or an ISO date')
    .option('--hard-sla <when>', 'seconds from now, or an ISO date')
    .option('--idempotency-key <key>', 'the same key returns the same DAG')
    .option('--wait', 'wait for the DAG to end (progress bar), exit 0 only if it completed')
    .option('--timeout <ms>', 'with --wait: give up after this long', integer('--timeout', 1))
    .action(
      run(async (flags, planArg) => {
        // A file is loaded here (checked, then sent as written); anything else is a plan's name.
        const { existsSync } = await import('node:fs');
        const plan = existsSync(planArg!) ? (await loadPlanFile(planArg!)).source : planArg!;
        const when = (v: string | undefined) =>
          v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v;
        const body = {
          plan,
          ...(flags.assetKey ? { asset_key: flags.assetKey } : {}),
          ...(flags.refId ? { ref_id: flags.refId } : {}),
          ...(flags.refType ? { ref_type: flags.refType } : {}),
          ...(flags.parameters ? { parameters: flags.parameters } : {}),
          ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
          ...(flags.softSla !== undefined ? { soft_sla: when(flags.softSla) } : {}),
          ...(flags.hardSla !== undefined ? { hard_sla: when(flags.hardSla) } : {}),
          ...(flags.idempotencyKey ? { idempotency_key: flags.idempotencyKey } : {}),
        };
        const client = clientOf(flags);
        const made = await client.submitDag(body as Parameters<Client['submitDag']>[0]);
        if (!flags.wait) {
          print(made);
          return 0;
        }
        return waitForDag(client, made.dag_id, flags.timeout);
      }),
    );
  dag
    .command('status <id>')
    .description("a DAG with every node's state, attempts, timings, output or error")
    .addOption(gatewayOption())
    .action(run(async (flags, id) => (print(await clientOf(flags).dag(id!)), 0)));
  dag
    .command('list')
    .description('DAGs, newest first')
    .addOption(gatewayOption())
    .option('--state <state>', 'pending, running, completed, failed, cancelled')
    .option('--plan <name>')
    .option('--ref-id <id>')
    .option('--limit <n>', 'how many (50)', integer('--limit', 1))
    .option('--after <dag_id>', 'the page after this DAG (the previous answer\'s "next")')
    .action(
      run(async (flags) => {
        print(
          await clientOf(flags).dags({
            ...(flags.state ? { state: flags.state } : {}),
            ...(flags.plan ? { plan: flags.plan } : {}),
            ...(flags.refId ? { ref_id: flags.refId } : {}),
            ...(flags.limit ? { limit: flags.limit } : {}),
            ...(flags.after ? { after: flags.after } : {}),
          }),
        );
        return 0;
      }),
    );
  dag
    .command('wait <id>')
    .description('wait for a DAG to end (nodes done / total); exit 0 only if it completed')
    .addOption(gatewayOption())
    .option('--timeout <ms>', 'give up after this long', integer('--timeout', 1))
    .action(run(async (flags, id) => waitForDag(clientOf(flags), id!, flags.timeout)));
  dag
    .command('retry <id>')
    .description('run again the failed and cancelled nodes and what depends on them')
    .addOption(gatewayOption())
    .action(run(async (flags, id) => (print(await clientOf(flags).retryDag(id!)), 0)));
  dag
    .command('cancel <id>')
    .description('cancel a DAG: pending nodes cancelled, running ones aborted')
    .addOption(gatewayOption())
    .action(run(async (flags, id) => (print(await clientOf(flags).cancelDag(id!)), 0)));
  for (const sub of dag.commands) addClientOptions(sub);
  return dag;
}
