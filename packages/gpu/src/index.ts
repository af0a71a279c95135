export { type ComputeProbeResult, runComputeProbe } from './cuda-probe.js';
export { type HealthConfig, parseHealthConfig } from './health-config.js';
export { HealthMonitor, type HealthMonitorOptions, type HealthRecord } from './health-monitor.js';
export { MATMUL_PTX } from './matmul.ptx.js';
export { type GpuDevice, Nvml, type NvmlOpen, type XidEvent } from './nvml.js';
export { CudaError, FATAL_NVML_CODES, NVML_CODES, NvmlError } from './nvml-error.js';
export { createSession, type Provider, type Session, type SessionOptions } from './onnx-session.js';
