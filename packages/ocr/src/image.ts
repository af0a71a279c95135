import type { Point, Quad } from './geometry.js';
import { dist } from './geometry.js';

/** An RGB image, 8 bits per channel, rows top to bottom (what docsFromAsset's tensors hold). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Bilinear sample of one channel at (x, y), clamped to the edges. */
function sample(img: RgbImage, x: number, y: number, c: number): number {
  const { data, width, height } = img;
  const cx = Math.min(Math.max(x, 0), width - 1);
  const cy = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const a = data[(y0 * width + x0) * 3 + c]!;
  const b = data[(y0 * width + x1) * 3 + c]!;
  const d = data[(y1 * width + x0) * 3 + c]!;
  const e = data[(y1 * width + x1) * 3 + c]!;
  return (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
}

/** Resizes (bilinear, pixel centers aligned). */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  for (let y = 0; y < height; y++) {
    const srcY = (y + 0.5) * sy - 0.5;
    for (let x = 0; x < width; x++) {
      const srcX = (x + 0.5) * sx - 0.5;
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = sample(img, srcX, srcY, c);
    }
  }
  return { data: out, width, height };
}

/**
 * The quad's content as an upright image of `height` rows (width from its aspect ratio), by an
 * affine map from the quad's top-left, top-right and bottom-left corners (PaddleOCR's rotated crop).
 */
export function cropQuad(img: RgbImage, quad: Quad, height: number, maxWidth = 2048): RgbImage {
  const [tl, tr, , bl] = quad;
  const w = Math.max(dist(tl, tr), 1);
  const h = Math.max(dist(tl, bl), 1);
  const outW = Math.min(maxWidth, Math.max(1, Math.round((w / h) * height)));
  const out = new Uint8Array(outW * height * 3);
  const ux: Point = [(tr[0] - tl[0]) / outW, (tr[1] - tl[1]) / outW];
  const vy: Point = [(bl[0] - tl[0]) / height, (bl[1] - tl[1]) / height];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < outW; x++) {
      const px = tl[0] + (x + 0.5) * ux[0] + (y + 0.5) * vy[0] - 0.5;
      const py = tl[1] + (x + 0.5) * ux[1] + (y + 0.5) * vy[1] - 0.5;
      for (let c = 0; c < 3; c++) out[(y * outW + x) * 3 + c] = sample(img, px, py, c);
    }
  return { data: out, width: outW, height };
}

/** Rotates by 180 degrees (a crop the direction classifier says is upside down). */
export function rotate180(img: RgbImage): RgbImage {
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const j = n - 1 - i;
    out[j * 3] = img.data[i * 3]!;
    out[j * 3 + 1] = img.data[i * 3 + 1]!;
    out[j * 3 + 2] = img.data[i * 3 + 2]!;
  }
  return { data: out, width: img.width, height: img.height };
}

/**
 * Writes an image into a CHW float tensor at `offset` (batch slot), BGR order as PaddleOCR's
 * models were trained (cv2 images), each channel `(x / 255 - mean) / std`; columns past the image
 * (right padding inside a batch) stay 0.
 */
export function writeChw(
  img: RgbImage,
  out: Float32Array,
  offset: number,
  tensorWidth: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): void {
  const plane = img.height * tensorWidth;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const src = (y * img.width + x) * 3;
      const dst = offset + y * tensorWidth + x;
      for (let c = 0; c < 3; c++) {
        const rgb = 2 - c; // BGR
        out[dst + c * plane] = (img.data[src + rgb]! / 255 - mean[c]!) / std[c]!;
      }
    }
}
