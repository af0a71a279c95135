import { ErrorCode, MarieError } from '@marie/core';

/** Waits `ms`; an abort of `signal` ends the wait at once with a MarieError `canceled`. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', done);
      resolve();
    }, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const aborted = () => new MarieError(ErrorCode.Canceled, 'the call was aborted');
