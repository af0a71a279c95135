// Small aligned copies come from a shared slab, as Node's Buffer pool does: allocating an
// ArrayBuffer per tensor costs more than copying a few kilobytes.
const SLAB_SIZE = 1 << 20;
const SLAB_MAX = 64 * 1024;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

/** An 8-byte-aligned copy of `bytes`. */
export function alignedCopy(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  if (n > SLAB_MAX) return new Uint8Array(bytes);
  if (slabUsed + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  out.set(bytes);
  slabUsed += (n + 7) & ~7; // keep every copy 8-byte aligned
  return out;
}
