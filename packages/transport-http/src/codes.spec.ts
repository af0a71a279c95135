import { ErrorCode } from '@marie/core';
import { describe, expect, it } from 'vitest';
import { fromHttpStatus, toHttpStatus } from './codes.js';

describe('HTTP status codes', () => {
  it('give every code a status, and read each status back as a code of the same status', () => {
    for (const code of Object.values(ErrorCode)) {
      const status = toHttpStatus(code);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(toHttpStatus(fromHttpStatus(status)), code).toBe(status);
    }
  });

  it("keep Jina's statuses: 422 bad input, 503 nobody there, 504 deadline", () => {
    expect(toHttpStatus(ErrorCode.InvalidArgument)).toBe(422);
    expect(toHttpStatus(ErrorCode.Unavailable)).toBe(503);
    expect(toHttpStatus(ErrorCode.DeadlineExceeded)).toBe(504);
    expect(fromHttpStatus(422)).toBe(ErrorCode.InvalidArgument);
    expect(fromHttpStatus(400)).toBe(ErrorCode.InvalidArgument);
    expect(fromHttpStatus(429)).toBe(ErrorCode.ResourceExhausted);
    expect(fromHttpStatus(502)).toBe(ErrorCode.Unavailable);
  });

  it('fall back by class for statuses the table does not name', () => {
    expect(fromHttpStatus(415)).toBe(ErrorCode.InvalidArgument);
    expect(fromHttpStatus(418)).toBe(ErrorCode.InvalidArgument);
    expect(fromHttpStatus(507)).toBe(ErrorCode.Internal);
    expect(fromHttpStatus(302)).toBe(ErrorCode.Unknown);
  });
});
