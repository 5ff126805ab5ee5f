/** One deadline and one AbortSignal over the stages of a connect (resolution, connect). */
import { AbortError, systemError } from './errors.js';

/** The longest delay a Node timer keeps: longer ones fire after about 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The error a connect that ran out of time rejects with, in Node's shape. */
export function timeoutError(target: { address: string; port: number }): Error {
  return systemError({
    code: 'ETIMEDOUT',
    message: '',
    errno: 110,
    syscall: 'connect',
    address: target.address,
    port: target.port,
  });
}

/** What a connect reads of its AbortSignal (an AbortSignal fits it). */
export interface DialSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Waits for `promise`, or rejects at the deadline or when `signal` aborts. */
export function race<T>(
  promise: Promise<T>,
  deadline: number | undefined,
  signal: DialSignal | undefined,
  target: { address: string; port: number },
): Promise<T> {
  if (deadline === undefined && signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const ms = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    // Beyond what a timer holds, no timer: such a deadline is never reached in practice.
    const timer =
      ms === undefined || ms > MAX_TIMER_MS
        ? undefined
        : setTimeout(() => settle(() => reject(timeoutError(target))), ms);
    const onAbort = (): void => settle(() => reject(new AbortError(undefined, { cause: signal?.reason })));
    signal?.addEventListener('abort', onAbort, { once: true });
    function settle(fn: () => void): void {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    }
    promise.then(
      (v) => settle(() => resolve(v)),
      (e) => settle(() => reject(e)),
    );
  });
}
