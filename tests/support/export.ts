import { join } from 'node:path';
import { runMarie } from './marie-process.js';

export const EXPORT_FIXTURE = join(
  import.meta.dirname,
  '..',
  'flow',
  'fixtures',
  'export-flow.yml',
);

/** Runs `marie export ...` to completion; resolves to its exit code and output. */
export async function marieExport(args: string[], env: NodeJS.ProcessEnv = {}) {
  const p = runMarie(['export', ...args], { env: { MARKER: '/tmp/marker.txt', ...env } });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
