import { DocValidationError } from './validation-error.js';

let maxElements = Number.POSITIVE_INFINITY;

/**
 * The most elements a tensor read from the wire (protobuf or JSON) may have in this process: a
 * server sets it from its limits (`maxTensorElements`), so that no request makes an executor
 * hold a tensor shaped beyond what it accepts. Unlimited unless set.
 */
export function setTensorElementLimit(limit: number): void {
  if (!(limit > 0)) throw new RangeError(`tensor element limit: ${limit} is not a positive number`);
  maxElements = limit;
}

export function tensorElementLimit(): number {
  return maxElements;
}

/** Throws a DocValidationError naming the field when a shape holds more elements than allowed. */
export function checkTensorSize(shape: readonly number[], path: string): void {
  if (maxElements === Number.POSITIVE_INFINITY) return;
  let size = 1;
  for (const d of shape) size *= d;
  if (size > maxElements)
    throw new DocValidationError(
      path,
      `tensor of shape [${shape.join(', ')}] has ${size} elements, more than the limit of ${maxElements} (maxTensorElements)`,
    );
}
