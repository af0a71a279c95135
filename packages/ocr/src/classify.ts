import type { InferenceSession } from 'onnxruntime-node';
import { type RgbImage, resize, writeChw } from './image.js';

const W = 192;
const H = 48;

/** The direction classifier's [p(0), p(180)] per crop, flat (PaddleOCR's 48x192 input). */
export async function directions(
  ort: typeof import('onnxruntime-node'),
  session: InferenceSession,
  crops: readonly RgbImage[],
): Promise<Float32Array> {
  const input = new Float32Array(crops.length * 3 * H * W);
  crops.forEach((c, k) => {
    const w = Math.min(W, Math.max(1, Math.round((c.width / c.height) * H)));
    writeChw(resize(c, w, H), input, k * 3 * H * W, W, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  });
  const res = await session.run({
    [session.inputNames[0]!]: new ort.Tensor('float32', input, [crops.length, 3, H, W]),
  });
  return res[session.outputNames[0]!]!.data as Float32Array;
}
