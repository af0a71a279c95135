import {
  createLogger,
  EXIT_FATAL,
  Executor,
  type ExecutorArgs,
  type Logger,
  requests,
  writeFaultMarker,
} from '@marie/core';
import { DocList, TextDoc } from '@marie/docs';
import { HealthMonitor, type HealthRecord, parseHealthConfig } from '@marie/gpu';
import { withStorage } from '@marie/storage';

export interface MarieExecutorArgs extends ExecutorArgs {
  /** `with.health`: the GPU monitor (Marie's keys; off unless `gpu_monitor_enabled`). */
  health?: unknown;
  /** `with.storage`: Postgres and object storage (@marie/storage). */
  storage?: unknown;
}

/**
 * Marie's MarieExecutor: an Executor with the GPU health monitor (NVML every pass, the CUDA
 * compute probe every Nth), `/status`, fault markers and storage. Use it as a `jtype` or extend it.
 *
 * While the monitor says unhealthy, the gRPC health service answers NOT_SERVING and HTTP `GET /`
 * 503. On a fatal failure it writes `$JINA_FAIL_DIR/<name>.<pid>.json`, stops taking requests,
 * drains the ones in flight and exits with code 75 (EXIT_FATAL), for its supervisor (a Deployment,
 * compose `restart`, Kubernetes) to start it again.
 */
export class MarieExecutor extends withStorage(Executor, { assetTrackingDefault: true }) {
  readonly monitor: HealthMonitor;
  protected readonly logger: Logger;

  constructor({ health, ...rest }: MarieExecutorArgs = {}) {
    super(rest);
    this.logger = createLogger(this.runtimeArgs.name);
    this.monitor = new HealthMonitor(parseHealthConfig(health, 'with.health'), {
      name: process.env.JINA_DEPLOYMENT_NAME || this.runtimeArgs.name || this.constructor.name,
      logger: this.logger,
      onRecord: (record) => this.#follow(record),
      onFatal: (record) => this.#fatal(record),
    });
  }

  override async open(): Promise<void> {
    await super.open();
    this.monitor.start();
  }

  /** Jina's dry run: one monitor pass with the compute probe; an unhealthy GPU fails it. */
  override async dryRun(): Promise<void> {
    await super.dryRun();
    if (!this.monitor.config.enabled) return;
    const record = await this.monitor.probe({ compute: true, source: 'dry_run_exc' });
    if (!record.healthy) throw new Error(`GPU health: ${record.reason}`);
  }

  /** The health record as one TextDoc whose text is its JSON (Marie's field names, plus devices). */
  @requests({ on: '/status', responseSchema: TextDoc })
  async status(): Promise<DocList<TextDoc>> {
    return new DocList(TextDoc, [{ text: JSON.stringify(this.monitor.record) }]);
  }

  override async close(): Promise<void> {
    this.monitor.stop();
    await super.close();
  }

  #follow(record: HealthRecord): void {
    this.setHealth(record.healthy, record.healthy ? '' : record.reason);
  }

  async #fatal(record: HealthRecord): Promise<void> {
    this.setHealth(false, record.reason);
    const file = writeFaultMarker({
      ts: record.ts,
      pid: process.pid,
      name: record.name,
      reason: record.reason,
      fail_streak: record.fail_streak,
      total_failures: record.total_failures,
      exit_code: EXIT_FATAL,
    });
    this.logger.error({ marker: file, reason: record.reason }, 'GPU failure is fatal; stopping');
    try {
      await this.terminate(record.reason, EXIT_FATAL);
    } catch (err) {
      // In process (a script, a test) nothing can stop us: stay NOT_SERVING and say so.
      this.logger.error({ err }, 'no runtime to stop this executor; it stays NOT_SERVING');
    }
  }
}
