import ClipperLib from 'clipper-lib';
import type { InferenceSession } from 'onnxruntime-node';
import { minAreaRect, type Point, polygonArea, polygonPerimeter, type Quad } from './geometry.js';
import { type RgbImage, resize, writeChw } from './image.js';

export interface DetectOptions {
  /** Longest side the page is resized to (a multiple of 32); 960 (PaddleOCR's limit_side_len). */
  maxSide?: number;
  /** Probability above which a pixel is text (DB `thresh`, 0.3). */
  threshold?: number;
  /** Mean probability a box needs (DB `box_thresh`, 0.6). */
  boxThreshold?: number;
  /** How far a box grows back out (DB `unclip_ratio`, 1.5). */
  unclipRatio?: number;
}

const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;

/** Text line boxes of a page: PP-OCRv4 detection and DB post-processing. */
export async function detect(
  ort: typeof import('onnxruntime-node'),
  session: InferenceSession,
  img: RgbImage,
  options: DetectOptions = {},
): Promise<{ quad: Quad; score: number }[]> {
  const maxSide = options.maxSide ?? 960;
  const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
  const rw = Math.max(32, Math.round((img.width * scale) / 32) * 32);
  const rh = Math.max(32, Math.round((img.height * scale) / 32) * 32);
  const input = new Float32Array(3 * rw * rh);
  writeChw(resize(img, rw, rh), input, 0, rw, MEAN, STD);
  const out = await session.run({
    [session.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, rh, rw]),
  });
  const prob = out[session.outputNames[0]!]!.data as Float32Array;
  return dbBoxes(prob, rw, rh, img.width / rw, img.height / rh, options);
}

/** DB post-processing of a probability map into boxes in page pixels. */
export function dbBoxes(
  prob: Float32Array,
  w: number,
  h: number,
  sx: number,
  sy: number,
  options: DetectOptions = {},
): { quad: Quad; score: number }[] {
  const thresh = options.threshold ?? 0.3;
  const boxThresh = options.boxThreshold ?? 0.6;
  const unclip = options.unclipRatio ?? 1.5;
  const label = new Int32Array(w * h);
  const boxes: { quad: Quad; score: number }[] = [];
  const stack: number[] = [];
  let next = 0;
  for (let start = 0; start < w * h; start++) {
    if (label[start] !== 0 || prob[start]! <= thresh) continue;
    next++;
    label[start] = next;
    stack.push(start);
    let sum = 0;
    let count = 0;
    const edge: Point[] = [];
    while (stack.length) {
      const i = stack.pop()!;
      sum += prob[i]!;
      count++;
      const x = i % w;
      const y = (i - x) / w;
      let boundary = false;
      for (const [dx, dy] of NEIGHBOURS) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) {
          boundary = true;
          continue;
        }
        const j = ny * w + nx;
        if (prob[j]! <= thresh) boundary = true;
        else if (label[j] === 0) {
          label[j] = next;
          stack.push(j);
        }
      }
      if (boundary) edge.push([x, y], [x + 1, y + 1]);
    }
    if (count < 6) continue;
    const rect = minAreaRect(edge);
    if (Math.min(rect.width, rect.height) < 2) continue;
    const score = sum / count;
    if (score < boxThresh) continue;
    const grown = unclipQuad(rect.quad, unclip);
    if (!grown) continue;
    const r2 = minAreaRect(grown);
    if (Math.min(r2.width, r2.height) < 3) continue;
    const quad = r2.quad.map(
      ([x, y]) => [clamp(x * sx, 0, w * sx), clamp(y * sy, 0, h * sy)] as Point,
    ) as Quad;
    boxes.push({ quad, score });
  }
  return boxes;
}

const NEIGHBOURS = [
  [1, 0],
  [-1, 0],
  [0, 1],
  [0, -1],
] as const;

function unclipQuad(quad: Quad, ratio: number): Point[] | undefined {
  const distance = (polygonArea(quad) * ratio) / polygonPerimeter(quad);
  const co = new ClipperLib.ClipperOffset();
  co.AddPath(
    quad.map(([x, y]) => ({ X: Math.round(x * 4), Y: Math.round(y * 4) })),
    ClipperLib.JoinType.jtRound,
    ClipperLib.EndType.etClosedPolygon,
  );
  const solution: { X: number; Y: number }[][] = [];
  co.Execute(solution, distance * 4);
  const poly = solution[0];
  if (!poly || poly.length < 3) return undefined;
  return poly.map((p) => [p.X / 4, p.Y / 4] as Point);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}
