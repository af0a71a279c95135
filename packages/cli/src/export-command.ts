import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { DEFAULT_IMAGE, type Flow, loadFlow, toCompose, toKubernetes } from '@marie/flow';
import { Argument, Command } from 'commander';
import { stringify } from 'yaml';
import { exitWith } from './errors.js';

interface ExportFlags {
  image?: string;
  flowDir: string;
  namespace?: string;
  buildContext?: string;
}

const HEADER = (flow: string) =>
  `# Written by \`marie export\` from ${flow}; edit the Flow and export again rather than this file.\n`;

const yaml = (docs: unknown[]) =>
  docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');

/** Writes every file next to its final name first, then renames: no half-written output. */
async function writeAll(files: { path: string; text: string }[]): Promise<void> {
  for (const f of files) {
    await mkdir(dirname(f.path), { recursive: true });
    await writeFile(`${f.path}.tmp`, f.text);
  }
  for (const f of files) await rename(`${f.path}.tmp`, f.path);
}

const posixPath = (p: string) => (p.split(sep).join('/') || '.').replace(/^(?!\.)/, './');

/**
 * `marie export compose|kubernetes flow.yml OUT/`: the same Flow as containers. Compose gets one
 * `docker-compose.yml`; Kubernetes one file per executor plus `gateway.yml`.
 */
export function exportCommand(): Command {
  return new Command('export')
    .description('write a Flow as a docker compose file or Kubernetes manifests')
    .addArgument(new Argument('<target>', 'what to write').choices(['compose', 'kubernetes']))
    .argument('<flow.yml>', 'the Flow YAML')
    .argument('<out>', 'directory to write into (created if missing)')
    .option(
      '--image <image>',
      `image of the gateway and of executors naming none (${DEFAULT_IMAGE})`,
    )
    .option('--flow-dir <dir>', "where the Flow's directory lies inside the image", '/app/flow')
    .option('--namespace <ns>', 'Kubernetes namespace of every object')
    .option(
      '--build-context <dir>',
      'compose: build the default image from this directory (FLOW build arg = the Flow directory)',
    )
    .action(async (target: 'compose' | 'kubernetes', flowFile: string, out: string, flags) => {
      try {
        const flow = await loadFlow(flowFile);
        await writeAll(render(target, flow, flowFile, out, flags as ExportFlags));
        process.stdout.write(`wrote ${target} files for ${flowFile} into ${out}\n`);
      } catch (err) {
        exitWith('marie export', err);
      }
    });
}

function render(
  target: 'compose' | 'kubernetes',
  flow: Flow,
  flowFile: string,
  out: string,
  flags: ExportFlags,
): { path: string; text: string }[] {
  const base = {
    flowDir: flags.flowDir,
    ...(flags.image ? { image: flags.image } : {}),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
  };
  if (target === 'kubernetes')
    return toKubernetes(flow, base).map((f) => ({
      path: join(out, f.file),
      text: HEADER(flowFile) + yaml(f.manifests),
    }));
  const context = flags.buildContext;
  const compose = toCompose(flow, {
    ...base,
    ...(context
      ? {
          build: {
            context: posixPath(relative(resolve(out), resolve(context))),
            args: { FLOW: posixPath(relative(resolve(context), dirname(resolve(flowFile)))) },
          },
        }
      : {}),
  });
  return [{ path: join(out, 'docker-compose.yml'), text: HEADER(flowFile) + yaml([compose]) }];
}
