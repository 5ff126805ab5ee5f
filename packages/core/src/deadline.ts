/** One deadline and one AbortSignal over the stages of a connect (resolution, connect). */
import { AbortError, systemError } from './errors.js';

/** The longest delay a Node timer keeps: longer ones fire after about 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer {@link setLongTimeout} set. */
export interface LongTimeout {
  clear(): void;
}

/**
 * `setTimeout(fn, ms)` for any delay (a timeout's milliseconds, validated): beyond
 * {@link MAX_TIMER_MS} (about 24.8 days), which a Node timer cannot hold (it would fire
 * at once, with a TimeoutOverflowWarning), the delay is waited out in timers of at most
 * that. Every timeout porter's packages set goes through here or {@link idleTimeout}.
 */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  let left = ms;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const step = Math.min(left, MAX_TIMER_MS);
    left -= step;
    timer = setTimeout(left > 0 ? arm : fn, step);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}

/**
 * A socket's idle timeout (`socket.setTimeout`), as Node takes it: beyond
 * {@link MAX_TIMER_MS} Node's socket timer would fire at once, so such a timeout is
 * none (0): no connection is idle for 24.8 days and then used.
 */
export function idleTimeout(ms: number | undefined): number {
  return ms === undefined || ms > MAX_TIMER_MS ? 0 : ms;
}

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
    const timer =
      deadline === undefined
        ? undefined
        : setLongTimeout(() => settle(() => reject(timeoutError(target))), Math.max(0, deadline - performance.now()));
    const onAbort = (): void => settle(() => reject(new AbortError(undefined, { cause: signal?.reason })));
    signal?.addEventListener('abort', onAbort, { once: true });
    function settle(fn: () => void): void {
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
      fn();
    }
    promise.then(
      (v) => settle(() => resolve(v)),
      (e) => settle(() => reject(e)),
    );
  });
}
