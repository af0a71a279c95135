// The fake NVML and CUDA libraries (tests/fixtures/gpu/*.c), compiled with cc into a folder of
// their own under their real sonames, and the state file that scripts them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'fixtures', 'gpu');

export type FakeGpuState = 'healthy' | 'xid' | 'lost' | 'reset' | 'nodevice' | 'wrong' | 'cudafail';

export interface FakeGpu {
  dir: string;
  nvml: string;
  cuda: string;
  stateFile: string;
  set(state: FakeGpuState): void;
  /** The environment a process needs to load them through @marie/gpu. */
  env: Record<string, string>;
}

export function buildFakeGpu(): FakeGpu {
  const dir = mkdtempSync(join(tmpdir(), 'marie-fake-gpu-'));
  const nvml = join(dir, 'libnvidia-ml.so.1');
  const cuda = join(dir, 'libcuda.so.1');
  for (const [out, src] of [
    [nvml, 'fake_nvml.c'],
    [cuda, 'fake_cuda.c'],
  ] as const)
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-Wall', '-Werror', '-o', out, join(SRC, src)]);
  const stateFile = join(dir, 'state');
  writeFileSync(stateFile, 'healthy');
  return {
    dir,
    nvml,
    cuda,
    stateFile,
    set: (state) => writeFileSync(stateFile, state),
    env: { MARIE_NVML_LIBRARY: nvml, MARIE_CUDA_LIBRARY: cuda, FAKE_GPU_STATE_FILE: stateFile },
  };
}
