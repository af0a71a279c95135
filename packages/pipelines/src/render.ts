import type { Plan, PlanNode } from './plan.js';

function detail(n: PlanNode): string {
  switch (n.kind) {
    case 'executor':
      return n.endpoint!.raw;
    case 'map':
      return `${n.endpoint!.raw} over ${n.map!.over}, ${n.map!.concurrency} at a time`;
    case 'branch':
      return `${n.branch!.mode}: ${n.branch!.paths.map((p) => `${JSON.stringify(p.when)} -> ${p.to.join(', ')}`).join('; ')}${n.otherwise?.length ? `; otherwise -> ${n.otherwise.join(', ')}` : ''}`;
    case 'switch':
      return `on ${n.switch!.field}: ${Object.entries(n.switch!.cases)
        .map(([v, t]) => `${v} -> ${t.join(', ')}`)
        .join('; ')}${n.otherwise?.length ? `; otherwise -> ${n.otherwise.join(', ')}` : ''}`;
    case 'merge':
      return `wait ${n.merge!.wait === 'n' ? `for ${n.merge!.n}` : n.merge!.wait}, skipped parents ${n.merge!.skipped === 'count' ? 'count' : 'ignored'}`;
    case 'guardrail': {
      const c = n.guardrail!.check;
      const how =
        'schema' in c ? 'JSON Schema' : 'regex' in c ? `/${c.regex}/${c.flags}` : c.endpoint.raw;
      return `${n.guardrail!.input} by ${how}; pass -> ${n.guardrail!.pass.join(', ') || '(end)'}; fail -> ${n.guardrail!.fail.join(', ') || '(end)'}`;
    }
    default:
      return '';
  }
}

/** The plan as text: one line per node, by level, with what it waits for and what it does. */
export function planText(plan: Plan): string {
  const lines = [`plan ${plan.name} v${plan.version}: ${plan.nodes.length} nodes`];
  for (const n of plan.nodes) {
    const needs = n.needs.length ? ` <- ${n.needs.join(', ')}` : '';
    const d = detail(n);
    lines.push(
      `${'  '.repeat(n.level + 1)}${n.id} [${n.kind}]${needs}${d ? `  ${d}` : ''}${n.onFailure === 'fail_dag' ? '' : `  (on failure: ${n.onFailure})`}`,
    );
  }
  return lines.join('\n');
}

const SHAPES: Record<PlanNode['kind'], [string, string]> = {
  executor: ['[', ']'],
  map: ['[[', ']]'],
  branch: ['{', '}'],
  switch: ['{', '}'],
  merge: ['((', '))'],
  guardrail: ['{{', '}}'],
  noop: ['(', ')'],
};

/** The plan as a Mermaid flowchart (top-down), edges of branches labelled with their path. */
export function planMermaid(plan: Plan): string {
  const esc = (s: string) => s.replace(/"/g, '#quot;');
  const lines = ['flowchart TD'];
  for (const n of plan.nodes) {
    const [a, b] = SHAPES[n.kind];
    const label = n.endpoint ? `${n.id}<br/>${n.endpoint.raw}` : `${n.id}<br/>${n.kind}`;
    lines.push(`  ${n.id}${a}"${esc(label)}"${b}`);
  }
  for (const n of plan.nodes)
    for (const p of n.needs) {
      const parent = plan.byId.get(p)!;
      const label = edgeLabel(parent, n.id);
      lines.push(label ? `  ${p} -->|${esc(label)}| ${n.id}` : `  ${p} --> ${n.id}`);
    }
  return lines.join('\n');
}

function edgeLabel(parent: PlanNode, child: string): string | undefined {
  if (parent.branch) {
    const i = parent.branch.paths.findIndex((p) => p.to.includes(child));
    if (i >= 0) return `path ${i}`;
  }
  if (parent.switch)
    for (const [v, t] of Object.entries(parent.switch.cases)) if (t.includes(child)) return v;
  if (parent.guardrail) {
    if (parent.guardrail.pass.includes(child)) return 'pass';
    if (parent.guardrail.fail.includes(child)) return 'fail';
  }
  if (parent.otherwise?.includes(child)) return 'otherwise';
  return undefined;
}
