/**
 * An AbortSignal made the first time it is asked for: transports hand one to every call, and most
 * methods never read `ctx.signal`, so most calls never pay for an AbortController and a listener.
 * `watch` runs once, at that first request: it aborts at once if the caller is already gone, or
 * arranges to abort when it goes.
 */
export function lazySignal(watch: (abort: (reason: Error) => void) => void): () => AbortSignal {
  let controller: AbortController | undefined;
  return () => {
    if (controller) return controller.signal;
    const made = new AbortController();
    controller = made;
    watch((reason) => made.abort(reason));
    return made.signal;
  };
}

/** A signal that never aborts: what a call nobody can cancel is handed (one for the process). */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;
