import koffi from 'koffi';
import { MATMUL_PTX } from './matmul.ptx.js';
import { CudaError } from './nvml-error.js';

export interface ComputeProbeResult {
  /** The numbers came back right. */
  ok: boolean;
  /** Matrix side (Marie's torch probe: 128). */
  n: number;
  /** Largest |C - reference| over the matrix. */
  maxError: number;
  /** Wall time from cuInit to the last free, in milliseconds. */
  ms: number;
  device: number;
}

let bound: ReturnType<typeof bind> | undefined;
let boundLibrary: string | undefined;

function bind(library: string) {
  const lib = koffi.load(library);
  const f = (sig: string) => lib.func(sig) as (...args: any[]) => number;
  return {
    init: f('int cuInit(uint32_t flags)'),
    errorString: f('int cuGetErrorString(int error, _Out_ const char **str)'),
    deviceGet: f('int cuDeviceGet(_Out_ int *device, int ordinal)'),
    ctxCreate: f('int cuCtxCreate_v2(_Out_ void **ctx, uint32_t flags, int device)'),
    ctxDestroy: f('int cuCtxDestroy_v2(void *ctx)'),
    synchronize: f('int cuCtxSynchronize()'),
    memAlloc: f('int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)'),
    memFree: f('int cuMemFree_v2(uint64_t dptr)'),
    htod: f('int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)'),
    dtoh: f('int cuMemcpyDtoH_v2(_Out_ void *dst, uint64_t src, size_t bytes)'),
    moduleLoad: f('int cuModuleLoadData(_Out_ void **module, const char *image)'),
    moduleUnload: f('int cuModuleUnload(void *module)'),
    getFunction: f('int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)'),
    launch: f(
      'int cuLaunchKernel(void *f, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t bx, uint32_t by, uint32_t bz, uint32_t shared, void *stream, void **params, void **extra)',
    ),
  };
}

/**
 * The CUDA compute probe without PyTorch: the driver API through koffi (`libcuda.so.1`, or
 * `$MARIE_CUDA_LIBRARY`): init, context, allocate, copy in, load the PTX matmul, launch,
 * synchronize, copy out, check against the CPU, free. Throws CudaError when a call fails (no
 * driver, no device); resolves `ok: false` when the numbers are wrong.
 */
export function runComputeProbe(
  options: { library?: string; n?: number; device?: number } = {},
): ComputeProbeResult {
  const library = options.library ?? (process.env.MARIE_CUDA_LIBRARY || 'libcuda.so.1');
  const n = options.n ?? 128;
  const ordinal = options.device ?? 0;
  if (bound === undefined || boundLibrary !== library) {
    try {
      bound = bind(library);
      boundLibrary = library;
    } catch (err) {
      throw new CudaError('load', -1, `${library} cannot be loaded (${(err as Error).message})`);
    }
  }
  const cu = bound;
  const check = (call: string, code: number) => {
    if (code === 0) return;
    const s: (string | null)[] = [null];
    cu.errorString(code, s);
    throw new CudaError(call, code, s[0] ?? undefined);
  };
  const t0 = performance.now();
  const a = new Float32Array(n * n);
  const b = new Float32Array(n * n);
  // Small dyadic values: every product and sum is exact in float32, so the GPU's answer must equal
  // the CPU's bit for bit whatever the summation order.
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      a[i * n + j] = ((i + 2 * j) % 7) / 8;
      b[i * n + j] = ((3 * i + j) % 5) / 4;
    }
  check('cuInit', cu.init(0));
  const dev = [0];
  check('cuDeviceGet', cu.deviceGet(dev, ordinal));
  const ctx: unknown[] = [null];
  check('cuCtxCreate_v2', cu.ctxCreate(ctx, 0, dev[0]));
  const ptrs: number[] = [];
  let module: unknown;
  let result: Omit<ComputeProbeResult, 'ms'>;
  try {
    const bytes = n * n * 4;
    for (let k = 0; k < 3; k++) {
      const p: (number | bigint)[] = [0];
      check('cuMemAlloc_v2', cu.memAlloc(p, bytes));
      ptrs.push(Number(p[0]));
    }
    check('cuMemcpyHtoD_v2', cu.htod(ptrs[0], a, bytes));
    check('cuMemcpyHtoD_v2', cu.htod(ptrs[1], b, bytes));
    const mod: unknown[] = [null];
    check('cuModuleLoadData', cu.moduleLoad(mod, MATMUL_PTX));
    module = mod[0];
    const fn: unknown[] = [null];
    check('cuModuleGetFunction', cu.getFunction(fn, module, 'matmul'));
    // kernelParams: one pointer per parameter, each to the parameter's value.
    const params = [
      new BigUint64Array([BigInt(ptrs[0]!)]),
      new BigUint64Array([BigInt(ptrs[1]!)]),
      new BigUint64Array([BigInt(ptrs[2]!)]),
      new Int32Array([n]),
    ];
    const block = 16;
    const grid = Math.ceil(n / block);
    check(
      'cuLaunchKernel',
      cu.launch(fn[0], grid, grid, 1, block, block, 1, 0, null, params, null),
    );
    check('cuCtxSynchronize', cu.synchronize());
    const c = new Float32Array(n * n);
    check('cuMemcpyDtoH_v2', cu.dtoh(c, ptrs[2], bytes));
    let maxError = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let k = 0; k < n; k++) ref += a[i * n + k]! * b[k * n + j]!;
        maxError = Math.max(maxError, Math.abs(c[i * n + j]! - ref));
      }
    result = { ok: maxError < 1e-3, n, maxError, device: ordinal };
  } finally {
    for (const p of ptrs) cu.memFree(p);
    if (module) cu.moduleUnload(module);
    cu.ctxDestroy(ctx[0]);
  }
  return { ...result, ms: performance.now() - t0 };
}
