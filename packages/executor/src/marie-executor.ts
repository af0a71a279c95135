import { join } from 'node:path';
import {
  createLogger,
  type EndpointAnswer,
  type EndpointCall,
  EXIT_FATAL,
  Executor,
  type ExecutorArgs,
  type Logger,
  requests,
  useInterceptor,
  writeFaultMarker,
} from '@marie/core';
import { DocList, TextDoc } from '@marie/docs';
import { type Toast, toastFromConfig } from '@marie/events';
import { HealthMonitor, type HealthRecord, parseHealthConfig } from '@marie/gpu';
import { withStorage } from '@marie/storage';

export interface MarieExecutorArgs extends ExecutorArgs {
  /** `with.toast`: event handlers (native JSONL, psql, rabbitmq; @marie/events). */
  toast?: unknown;
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
  /** The event handlers, once open (when `toast:` is configured). */
  toast: Toast | undefined;
  readonly #toastConfig: unknown;

  constructor({ health, toast, ...rest }: MarieExecutorArgs = {}) {
    super(rest);
    this.#toastConfig = toast;
    // Outside the job records: `completed` goes out only once SUCCEEDED is written.
    if (toast !== undefined && toast !== null)
      useInterceptor(this, (call, next) => this.#jobEvents(call, next), { outermost: true });
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
    if (this.#toastConfig !== undefined && this.#toastConfig !== null && !this.toast) {
      const cfg = this.#toastConfig as { spool_dir?: unknown };
      // One spool per replica: replicas share the shard's workspace, and a spool has one owner
      // (a restarted replica takes its own back).
      const replica = this.runtimeArgs.replicaId ?? 0;
      const base =
        typeof cfg.spool_dir === 'string' ? cfg.spool_dir : join(this.workspace, 'event-spool');
      const spoolDir = replica ? `${base}-${replica}` : base;
      this.toast = toastFromConfig(this.#toastConfig, { spoolDir, logger: this.logger });
    }
    this.monitor.start();
  }

  /** `<name>.started` before a job-tracked call, `<name>.completed` or `<name>.failed` after it. */
  async #jobEvents(
    call: EndpointCall,
    next: () => Promise<EndpointAnswer>,
  ): Promise<EndpointAnswer> {
    const jobId = call.parameters.job_id;
    const toast = this.toast;
    if (typeof jobId !== 'string' || !jobId || !toast) return next();
    const name = this.runtimeArgs.name;
    const p = call.parameters;
    const base = {
      jobid: jobId,
      jobtag: typeof p.ref_type === 'string' ? p.ref_type : '',
      api_key: typeof p.api_key === 'string' ? p.api_key : 'marie',
    };
    const payload = {
      endpoint: call.endpoint,
      executor: name,
      ref_id: p.ref_id ?? null,
      ref_type: p.ref_type ?? null,
    };
    await toast.notify({ ...base, event: `${name}.started`, status: 'INFO', payload });
    let answer: EndpointAnswer;
    try {
      answer = await next();
    } catch (err) {
      await toast.notify({
        ...base,
        event: `${name}.failed`,
        status: 'FAILED',
        payload: { ...payload, error: errorOf(err) },
      });
      throw err;
    }
    const r = answer.results as { status?: unknown; error?: unknown } | undefined;
    const failed = r?.status === 'error' || r?.status === 'failed';
    await toast.notify({
      ...base,
      event: `${name}.${failed ? 'failed' : 'completed'}`,
      status: failed ? 'FAILED' : 'OK',
      payload: failed
        ? { ...payload, error: r?.error ?? null }
        : { ...payload, docs: answer.docs.length },
    });
    return answer;
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
    // What is not delivered yet stays in the spool for the next start.
    await this.toast?.close();
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

function errorOf(err: unknown): { name: string; message: string } {
  return err instanceof Error
    ? { name: err.name, message: err.message }
    : { name: 'Error', message: String(err) };
}
