import { type Logger, type MetricFamily, registerMetricSource } from '@marie/core';
import { type ComputeProbeResult, runComputeProbe } from './cuda-probe.js';
import type { HealthConfig } from './health-config.js';
import { type GpuDevice, Nvml, type NvmlOpen } from './nvml.js';
import { NvmlError } from './nvml-error.js';

/** What `/status` answers: Marie's field names (marie_executor.py), plus the devices NVML reads. */
export interface HealthRecord {
  /** Seconds since the epoch. */
  ts: number;
  healthy: boolean;
  reason: string;
  /** nvml | torch (the compute probe, Marie's name) | combined | skipped | terminate | dry_run_exc */
  source: string;
  exc_class: string | null;
  exc_message: string | null;
  fail_streak: number;
  total_failures: number;
  pid: number;
  name: string;
  version: string | null;
  monitor_enabled: boolean;
  nvml_available: boolean;
  /** The CUDA compute probe is on (Marie's name: its probe was torch's). */
  torch_check_enabled: boolean;
  /** The last compute probe ran and answered right. */
  torch_available: boolean;
  devices: GpuDevice[];
  /** The last compute probe's numbers, when one ran. */
  compute_probe?: Omit<ComputeProbeResult, 'ok'> & { ok: boolean };
}

export interface HealthMonitorOptions {
  name: string;
  /** `$MARIE_BUILD_SHA` unless given. */
  version?: string;
  /** Opens NVML (default `Nvml.open()`: `libnvidia-ml.so.1` or `$MARIE_NVML_LIBRARY`). */
  openNvml?: () => NvmlOpen;
  /** The compute probe (default: the PTX matmul through `libcuda.so.1` or `$MARIE_CUDA_LIBRARY`). */
  computeProbe?: () => ComputeProbeResult;
  /** Called after every pass with its record (healthy or not). */
  onRecord?: (record: HealthRecord) => void;
  /** Called once, on the failure that ends the monitor. */
  onFatal?: (record: HealthRecord) => void | Promise<void>;
  logger?: Logger;
  random?: () => number;
}

class ProbeFailure extends Error {
  constructor(
    message: string,
    readonly source: string,
    readonly fatal = false,
  ) {
    super(message);
    this.name = 'ProbeFailure';
  }
}

/**
 * Marie's GPU health monitor: an NVML pass every interval (devices present, no Xid, readings
 * answer), the compute probe every Nth pass; a success resets the streak and the interval, a
 * failure doubles the interval (up to the cap) or, when fatal (fail fast, the streak reached
 * `consecutive_failures`, GPU_IS_LOST / RESET_REQUIRED), ends it through `onFatal`.
 * Without NVML on the machine the monitor reports itself off instead of failing.
 */
export class HealthMonitor {
  readonly config: HealthConfig;
  #record: HealthRecord;
  readonly #options: HealthMonitorOptions;
  #nvml: NvmlOpen | undefined;
  #pass = 0;
  #interval: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #fatal = false;
  #unregister: (() => void) | undefined;

  constructor(config: HealthConfig, options: HealthMonitorOptions) {
    this.config = config;
    this.#options = options;
    this.#interval = config.intervalS;
    this.#record = {
      ts: Date.now() / 1000,
      healthy: true,
      reason: 'not probed yet',
      source: 'skipped',
      exc_class: null,
      exc_message: null,
      fail_streak: 0,
      total_failures: 0,
      pid: process.pid,
      name: options.name,
      version: options.version ?? process.env.MARIE_BUILD_SHA ?? null,
      monitor_enabled: config.enabled,
      nvml_available: false,
      torch_check_enabled: config.enabled && config.computeCheck,
      torch_available: false,
      devices: [],
    };
  }

  get record(): Readonly<HealthRecord> {
    return this.#record;
  }

  /** Seconds until the next pass (before jitter): `interval_s`, doubled per failure up to the cap. */
  get intervalS(): number {
    return this.#interval;
  }

  /** Starts the loop (first pass after 0.5 s plus a pid-spread offset, as Marie's). */
  start(): void {
    if (!this.config.enabled || this.#running) return;
    this.#running = true;
    this.#unregister ??= registerMetricSource(() => this.metrics());
    this.#schedule(0.5 + (process.pid % 10) * 0.013);
  }

  stop(): void {
    this.#running = false;
    this.#unregister?.();
    this.#unregister = undefined;
    clearTimeout(this.#timer);
    if (this.#nvml?.available) this.#nvml.nvml.shutdown();
    this.#nvml = undefined;
  }

  /**
   * The last pass as Prometheus families (`marie_gpu_*`): health, failures, and each device's
   * memory, utilization, temperature and ECC counts as NVML read them. Scraped through
   * @marie/metrics while the monitor runs.
   */
  metrics(): MetricFamily[] {
    const r = this.#record;
    const executor = { executor: r.name };
    const devices = r.devices.map((d) => ({
      d,
      labels: { ...executor, device: String(d.index), uuid: d.uuid },
    }));
    const perDevice = (
      name: string,
      help: string,
      value: (d: GpuDevice) => number | null | undefined,
    ): MetricFamily => ({
      name,
      help,
      type: 'gauge',
      labelNames: ['executor', 'device', 'uuid'],
      samples: devices.flatMap(({ d, labels }) => {
        const v = value(d);
        return v === null || v === undefined ? [] : [{ labels, value: v }];
      }),
    });
    return [
      {
        name: 'marie_gpu_healthy',
        help: 'Whether the last GPU health pass passed (1) or not (0)',
        type: 'gauge',
        labelNames: ['executor'],
        samples: [{ labels: executor, value: r.healthy ? 1 : 0 }],
      },
      {
        name: 'marie_gpu_health_failures_total',
        help: 'GPU health passes that failed',
        type: 'counter',
        labelNames: ['executor'],
        samples: [{ labels: executor, value: r.total_failures }],
      },
      {
        name: 'marie_gpu_health_fail_streak',
        help: 'GPU health passes failed in a row',
        type: 'gauge',
        labelNames: ['executor'],
        samples: [{ labels: executor, value: r.fail_streak }],
      },
      perDevice('marie_gpu_memory_used_bytes', 'GPU memory in use', (d) => d.memory.usedBytes),
      perDevice('marie_gpu_memory_total_bytes', 'GPU memory in all', (d) => d.memory.totalBytes),
      perDevice(
        'marie_gpu_utilization_ratio',
        'Share of the last sample period the GPU was busy',
        (d) => (d.utilization ? d.utilization.gpuPercent / 100 : null),
      ),
      perDevice('marie_gpu_temperature_celsius', 'GPU temperature', (d) => d.temperatureC),
      {
        name: 'marie_gpu_ecc_errors_total',
        help: 'ECC errors the GPU counted (corrected, uncorrected)',
        type: 'counter',
        labelNames: ['executor', 'device', 'uuid', 'type'],
        samples: devices.flatMap(({ d, labels }) =>
          d.ecc
            ? [
                { labels: { ...labels, type: 'corrected' }, value: d.ecc.corrected },
                { labels: { ...labels, type: 'uncorrected' }, value: d.ecc.uncorrected },
              ]
            : [],
        ),
      },
    ];
  }

  /**
   * One pass now. `compute` forces the compute probe (a dry run does); `source` names the record
   * a failure leaves (`dry_run_exc` for a dry run).
   */
  async probe(options: { compute?: boolean; source?: string } = {}): Promise<HealthRecord> {
    this.#pass++;
    const compute =
      this.config.computeCheck &&
      (options.compute === true || this.#pass % this.config.computeEvery === 0);
    try {
      const { devices, probe } = this.#runPass(compute);
      this.#interval = this.config.intervalS;
      this.#record = {
        ...this.#record,
        ts: Date.now() / 1000,
        healthy: true,
        reason: devices === undefined ? this.#unavailableReason() : 'ok',
        source: devices === undefined ? 'skipped' : probe ? 'combined' : 'nvml',
        exc_class: null,
        exc_message: null,
        fail_streak: 0,
        nvml_available: devices !== undefined,
        devices: devices ?? [],
        ...(probe ? { torch_available: probe.ok, compute_probe: probe } : {}),
      };
      this.#options.onRecord?.(this.#record);
      return this.#record;
    } catch (err) {
      return this.#failed(err, options.source);
    }
  }

  #runPass(compute: boolean): { devices?: GpuDevice[]; probe?: ComputeProbeResult } {
    this.#nvml ??= (this.#options.openNvml ?? (() => Nvml.open()))();
    if (!this.#nvml.available) return {};
    const nvml = this.#nvml.nvml;
    let devices: GpuDevice[];
    try {
      devices = nvml.devices();
      if (devices.length === 0) throw new ProbeFailure('no GPU devices', 'nvml');
      const xid = nvml.waitXid(0);
      if (xid) throw new ProbeFailure(`Xid ${xid.xid} on GPU ${xid.deviceIndex}`, 'nvml');
    } catch (err) {
      // Marie re-initializes NVML after any exception.
      nvml.shutdown();
      this.#nvml = undefined;
      throw err;
    }
    if (!compute) return { devices };
    let probe: ComputeProbeResult;
    try {
      probe = (this.#options.computeProbe ?? (() => runComputeProbe()))();
    } catch (err) {
      throw new ProbeFailure(`compute probe: ${(err as Error).message}`, 'torch');
    }
    if (!probe.ok)
      throw new ProbeFailure(
        `compute probe: wrong result (max error ${probe.maxError} on a ${probe.n}x${probe.n} matmul)`,
        'torch',
      );
    return { devices, probe };
  }

  #unavailableReason(): string {
    return this.#nvml && !this.#nvml.available ? this.#nvml.reason : 'NVML unavailable';
  }

  async #failed(err: unknown, source?: string): Promise<HealthRecord> {
    const error = err as Error;
    const streak = this.#record.fail_streak + 1;
    const fatal =
      this.config.failFast ||
      streak >= this.config.consecutiveFailures ||
      (error instanceof NvmlError && error.fatal) ||
      (error instanceof ProbeFailure && error.fatal);
    this.#record = {
      ...this.#record,
      ts: Date.now() / 1000,
      healthy: false,
      reason: error.message,
      source: fatal
        ? 'terminate'
        : (source ?? (error instanceof ProbeFailure ? error.source : 'nvml')),
      exc_class: error instanceof ProbeFailure ? 'GPUHealthError' : error.name || 'Error',
      exc_message: error.message,
      fail_streak: streak,
      total_failures: this.#record.total_failures + 1,
    };
    if (source === 'dry_run_exc') this.#record.source = source;
    this.#options.logger?.error({ health: this.#record }, 'GPU health check failed');
    this.#options.onRecord?.(this.#record);
    if (fatal && !this.#fatal) {
      this.#fatal = true;
      this.#running = false;
      clearTimeout(this.#timer);
      await this.#options.onFatal?.(this.#record);
    } else if (!fatal) {
      this.#interval = Math.min(this.#interval * 2, this.config.maxIntervalS);
    }
    return this.#record;
  }

  #schedule(seconds: number): void {
    const jitter = (this.#options.random ?? Math.random)() * this.config.jitterS;
    this.#timer = setTimeout(
      () => {
        if (!this.#running) return;
        void this.probe().then(() => {
          if (this.#running) this.#schedule(this.#interval);
        });
      },
      (seconds + jitter) * 1000,
    );
    this.#timer.unref();
  }
}
