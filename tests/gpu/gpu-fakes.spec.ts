// @marie/gpu's real koffi code against the fake libnvidia-ml.so.1 and libcuda.so.1 (C, compiled
// here): readings, Xid events, GPU_IS_LOST, the PTX matmul probe, and the health monitor's rules.
import { rmSync } from 'node:fs';
import { HealthMonitor, Nvml, NvmlError, parseHealthConfig, runComputeProbe } from '@marie/gpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeGpu, type FakeGpu } from '../support/fake-gpu.js';

let gpu: FakeGpu;
beforeAll(() => {
  gpu = buildFakeGpu();
  process.env.FAKE_GPU_STATE_FILE = gpu.stateFile;
});
afterAll(() => rmSync(gpu.dir, { recursive: true, force: true }));

const open = () => {
  const o = Nvml.open(gpu.nvml);
  if (!o.available) throw new Error(o.reason);
  return o.nvml;
};

describe('NVML through koffi', () => {
  it('reads the devices', () => {
    gpu.set('healthy');
    const nvml = open();
    expect(nvml.deviceCount()).toBe(1);
    expect(nvml.devices()).toEqual([
      {
        index: 0,
        name: 'Fake GPU 0',
        uuid: 'GPU-00000000-fake-0000-0000-000000000000',
        memory: { totalBytes: 16 * 2 ** 30, freeBytes: 15 * 2 ** 30, usedBytes: 2 ** 30 },
        utilization: { gpuPercent: 37, memoryPercent: 12 },
        temperatureC: 41, // nvmlDeviceGetTemperatureV
        ecc: { corrected: 3, uncorrected: 0 },
      },
    ]);
    expect(nvml.driverVersion()).toBe('999.99-fake');
    nvml.shutdown();
  });

  it('falls back to the deprecated temperature call', () => {
    process.env.FAKE_NVML_NO_TEMPV = '1';
    try {
      expect(open().device(0).temperatureC).toBe(40);
    } finally {
      delete process.env.FAKE_NVML_NO_TEMPV;
    }
  });

  it('reports Xid events through an event set', () => {
    gpu.set('healthy');
    const nvml = open();
    expect(nvml.waitXid(0)).toBeUndefined();
    gpu.set('xid');
    expect(nvml.waitXid(0)).toEqual({ deviceIndex: 0, xid: 79 });
    gpu.set('healthy');
  });

  it('turns return codes into named errors; GPU_IS_LOST and RESET_REQUIRED are fatal', () => {
    gpu.set('healthy');
    const nvml = open();
    nvml.device(0); // the handle is taken while healthy; the readings then fail
    gpu.set('lost');
    const lost = (() => {
      try {
        nvml.device(0);
      } catch (e) {
        return e;
      }
    })() as NvmlError;
    expect(lost).toBeInstanceOf(NvmlError);
    expect(lost.message).toBe('nvmlDeviceGetName: GPU_IS_LOST (15): GPU is lost');
    expect(lost.fatal).toBe(true);
    gpu.set('reset');
    expect(() => nvml.device(0)).toThrow(/RESET_REQUIRED \(16\)/);
    gpu.set('healthy');
  });

  it('a machine without the library is "NVML unavailable", reported, not thrown', () => {
    const o = Nvml.open('/nonexistent/libnvidia-ml.so.1');
    expect(o).toEqual({
      available: false,
      reason: expect.stringMatching(
        /^NVML unavailable: \/nonexistent\/libnvidia-ml\.so\.1 cannot be loaded/,
      ),
    });
  });
});

describe('the CUDA compute probe', () => {
  it('runs the 128 x 128 PTX matmul and checks the numbers', () => {
    gpu.set('healthy');
    const r = runComputeProbe({ library: gpu.cuda });
    expect(r).toMatchObject({ ok: true, n: 128, maxError: 0, device: 0 });
    expect(r.ms).toBeGreaterThan(0);
  });
  it('a wrong number fails the probe; a driver error throws', () => {
    gpu.set('wrong');
    expect(runComputeProbe({ library: gpu.cuda })).toMatchObject({ ok: false, maxError: 1 });
    gpu.set('cudafail');
    expect(() => runComputeProbe({ library: gpu.cuda })).toThrow(
      'cuInit: CUDA error 100: no CUDA-capable device is detected',
    );
    gpu.set('healthy');
  });
});

describe('the health monitor', () => {
  const monitor = (config: Record<string, unknown>, onFatal?: (r: unknown) => void) =>
    new HealthMonitor(parseHealthConfig({ gpu_monitor_enabled: true, jitter_s: 0, ...config }), {
      name: 'ocr',
      version: 'abc123',
      openNvml: () => Nvml.open(gpu.nvml),
      computeProbe: () => runComputeProbe({ library: gpu.cuda }),
      ...(onFatal ? { onFatal } : {}),
    });

  it('starts healthy ("not probed yet"), then records NVML and compute passes', async () => {
    gpu.set('healthy');
    const m = monitor({});
    expect(m.record).toMatchObject({
      healthy: true,
      reason: 'not probed yet',
      monitor_enabled: true,
      name: 'ocr',
      version: 'abc123',
    });
    const r1 = await m.probe();
    expect(r1).toMatchObject({
      healthy: true,
      source: 'nvml',
      nvml_available: true,
      fail_streak: 0,
    });
    expect(r1.devices[0]!.name).toBe('Fake GPU 0');
    await m.probe();
    const r3 = await m.probe(); // every 3rd pass runs the compute probe
    expect(r3).toMatchObject({ healthy: true, source: 'combined', torch_available: true });
    expect(r3.compute_probe).toMatchObject({ ok: true, n: 128 });
    m.stop();
  });

  it('fails fast by default: one failed pass is fatal, onFatal once, source terminate', async () => {
    const fatal: unknown[] = [];
    const m = monitor({}, (r) => fatal.push(r));
    gpu.set('xid');
    const r = await m.probe();
    expect(r).toMatchObject({
      healthy: false,
      source: 'terminate',
      reason: 'Xid 79 on GPU 0',
      exc_class: 'GPUHealthError',
      fail_streak: 1,
      total_failures: 1,
    });
    await m.probe();
    expect(fatal).toHaveLength(1);
    gpu.set('healthy');
  });

  it('without fail fast: the interval doubles up to the cap, consecutive failures end it; GPU_IS_LOST is fatal at once', async () => {
    const fatal: unknown[] = [];
    const m = monitor({ fail_fast_on_error: false, consecutive_failures: 3, interval_s: 30 }, (r) =>
      fatal.push(r),
    );
    gpu.set('wrong');
    expect(m.intervalS).toBe(30);
    const r1 = await m.probe({ compute: true });
    expect(r1).toMatchObject({ healthy: false, source: 'torch', fail_streak: 1 });
    expect(m.intervalS).toBe(60);
    expect(r1.reason).toMatch(/compute probe: wrong result \(max error 1 on a 128x128 matmul\)/);
    gpu.set('healthy');
    expect(await m.probe()).toMatchObject({ healthy: true, fail_streak: 0, total_failures: 1 });
    expect(m.intervalS).toBe(30); // a success resets it
    gpu.set('nodevice');
    await m.probe();
    expect(m.intervalS).toBe(60);
    await m.probe();
    expect(m.intervalS).toBe(90); // capped at max_interval_s
    expect(fatal).toHaveLength(0);
    const r = await m.probe();
    expect(r).toMatchObject({
      source: 'terminate',
      fail_streak: 3,
      total_failures: 4,
      reason: 'no GPU devices',
    });
    expect(fatal).toHaveLength(1);
    const lost: unknown[] = [];
    const m2 = monitor({ fail_fast_on_error: false }, (x) => lost.push(x));
    gpu.set('lost');
    expect(await m2.probe()).toMatchObject({ source: 'terminate', exc_class: 'NvmlError' });
    expect(lost).toHaveLength(1);
    gpu.set('healthy');
  });

  it('reports itself off where NVML is missing, and never fails for it', async () => {
    const m = new HealthMonitor(parseHealthConfig({ gpu_monitor_enabled: true }), {
      name: 'cpu-box',
      openNvml: () => Nvml.open('/nonexistent/libnvidia-ml.so.1'),
    });
    const r = await m.probe({ compute: true });
    expect(r).toMatchObject({ healthy: true, source: 'skipped', nvml_available: false });
    expect(r.reason).toMatch(/^NVML unavailable/);
  });
});
