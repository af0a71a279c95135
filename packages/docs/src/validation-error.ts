/**
 * A document or parameter that does not fit its schema. `path` names the place
 * (`docs[3].embedding`, `parameters.job_id`) and `reason` what is wrong there.
 */
export class DocValidationError extends Error {
  override name = 'ValidationError';
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}
