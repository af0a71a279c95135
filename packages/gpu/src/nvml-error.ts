/** NVML's return codes by name (nvml.h). */
export const NVML_CODES: Record<number, string> = {
  0: 'SUCCESS',
  1: 'UNINITIALIZED',
  2: 'INVALID_ARGUMENT',
  3: 'NOT_SUPPORTED',
  4: 'NO_PERMISSION',
  5: 'ALREADY_INITIALIZED',
  6: 'NOT_FOUND',
  7: 'INSUFFICIENT_SIZE',
  8: 'INSUFFICIENT_POWER',
  9: 'DRIVER_NOT_LOADED',
  10: 'TIMEOUT',
  11: 'IRQ_ISSUE',
  12: 'LIBRARY_NOT_FOUND',
  13: 'FUNCTION_NOT_FOUND',
  14: 'CORRUPTED_INFOROM',
  15: 'GPU_IS_LOST',
  16: 'RESET_REQUIRED',
  17: 'OPERATING_SYSTEM',
  18: 'LIB_RM_VERSION_MISMATCH',
  19: 'IN_USE',
  20: 'MEMORY',
  21: 'NO_DATA',
  22: 'VGPU_ECC_NOT_SUPPORTED',
  23: 'INSUFFICIENT_RESOURCES',
  24: 'FREQ_NOT_SUPPORTED',
  25: 'ARGUMENT_VERSION_MISMATCH',
  26: 'DEPRECATED',
  27: 'NOT_READY',
  999: 'UNKNOWN',
};

/** Codes after which the GPU cannot be used without a reset: the process should stop. */
export const FATAL_NVML_CODES: ReadonlySet<number> = new Set([15, 16]);

/** A failed NVML call: `nvmlDeviceGetName: GPU_IS_LOST (15): GPU is lost`. */
export class NvmlError extends Error {
  override name = 'NvmlError';
  readonly code: number;
  readonly codeName: string;
  /** GPU_IS_LOST or RESET_REQUIRED. */
  readonly fatal: boolean;
  readonly call: string;

  constructor(call: string, code: number, description?: string) {
    const codeName = NVML_CODES[code] ?? `CODE_${code}`;
    super(`${call}: ${codeName} (${code})${description ? `: ${description}` : ''}`);
    this.call = call;
    this.code = code;
    this.codeName = codeName;
    this.fatal = FATAL_NVML_CODES.has(code);
  }
}

/** A failed CUDA driver call: `cuInit: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device`. */
export class CudaError extends Error {
  override name = 'CudaError';
  readonly code: number;
  readonly call: string;
  constructor(call: string, code: number, description?: string) {
    super(`${call}: CUDA error ${code}${description ? `: ${description}` : ''}`);
    this.call = call;
    this.code = code;
  }
}
