import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { keepEnvReferences } from '@marie/core';
import {
  composeEnv,
  DEFAULT_IMAGE,
  envLines,
  type Flow,
  loadFlow,
  parseStackServices,
  planExport,
  stackSettings,
  toCompose,
  toKubernetes,
} from '@marie/flow';
import { Argument, Command } from 'commander';
import { stringify } from 'yaml';
import { exitWith, UsageError } from './errors.js';

interface ExportFlags {
  image?: string;
  flowDir: string;
  namespace?: string;
  buildContext?: string;
  withServices?: string;
  ingress?: string;
  ingressClass?: string;
  ingressTlsSecret?: string;
  secretValues?: boolean;
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
    .option(
      '--with-services <list>',
      'compose: add postgres, s3 (SeaweedFS) and/or rabbitmq to the stack (comma separated)',
    )
    .option('--ingress <host>', "kubernetes: an Ingress for the gateway's HTTP port at this host")
    .option('--ingress-class <name>', 'kubernetes: the Ingress class (the cluster default)')
    .option('--ingress-tls-secret <name>', "kubernetes: the TLS Secret of the Ingress's host")
    .option(
      '--secret-values',
      "copy secrets' values from this environment into .env / the Secret (else left empty)",
    )
    .action(async (target: 'compose' | 'kubernetes', flowFile: string, out: string, flags) => {
      try {
        // `${{ ENV.X }}` stays a reference: a Secret, a ConfigMap or the env file gives the value
        // where the Flow runs; nothing from this environment is written into arguments.
        const flow = await loadFlow(flowFile, { env: keepEnvReferences() });
        const files = render(target, flow, flowFile, out, flags as ExportFlags);
        await writeAll(files);
        process.stdout.write(
          `wrote ${files.map((f) => relative(out, f.path)).join(', ')} for ${flowFile} into ${out}\n`,
        );
        const empty = planExport(flow).variables.filter(
          (v) => !files.some((f) => f.filled?.includes(v.name)),
        );
        if (empty.length)
          process.stdout.write(
            `set ${empty.map((v) => v.name).join(', ')} in ${target === 'compose' ? '.env' : 'config.yml'} before starting it\n`,
          );
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
): { path: string; text: string; filled?: string[] }[] {
  const base = {
    flowDir: flags.flowDir,
    ...(flags.image ? { image: flags.image } : {}),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
  };
  const values = { values: process.env, ...(flags.secretValues ? { secretValues: true } : {}) };
  if (target === 'kubernetes') {
    if (flags.withServices)
      throw new UsageError(
        '--with-services is for compose; on Kubernetes the Flow points at your Postgres, S3 and RabbitMQ by URL (the Secret)',
      );
    const files = toKubernetes(flow, {
      ...base,
      ...values,
      ...(flags.ingress
        ? {
            ingress: {
              host: flags.ingress,
              ...(flags.ingressClass ? { className: flags.ingressClass } : {}),
              ...(flags.ingressTlsSecret ? { tlsSecret: flags.ingressTlsSecret } : {}),
            },
          }
        : {}),
    });
    const filled = envLines(planExport(flow, base).variables, values)
      .filter((l) => l.value !== '')
      .map((l) => l.name);
    return files.map((f) => ({
      path: join(out, f.file),
      text: HEADER(flowFile) + yaml(f.manifests),
      filled,
    }));
  }
  if (flags.ingress) throw new UsageError('--ingress is for kubernetes');
  const services = flags.withServices ? parseStackServices(flags.withServices) : [];
  const lines = envLines(planExport(flow, base).variables, {
    ...values,
    stack: stackSettings(services),
  });
  const context = flags.buildContext;
  const compose = toCompose(flow, {
    ...base,
    services,
    ...(context
      ? {
          build: {
            context: posixPath(relative(resolve(out), resolve(context))),
            args: { FLOW: posixPath(relative(resolve(context), dirname(resolve(flowFile)))) },
          },
        }
      : {}),
  });
  const filled = lines.filter((l) => l.value !== '').map((l) => l.name);
  return [
    { path: join(out, 'docker-compose.yml'), text: HEADER(flowFile) + yaml([compose]), filled },
    ...(lines.length
      ? [
          {
            path: join(out, '.env'),
            text: `# The variables of ${flowFile} for docker compose (interpolation and each service's env_file).\n# Keep this file out of version control when it holds secrets.\n${composeEnv(lines)}`,
            filled,
          },
        ]
      : []),
  ];
}
