/**
 * A Porter's connect path, up to a connected descriptor and its lease, for options
 * checked by the caller (connect-options.ts): the resolution of a name, then one native
 * connect per address, as net.connect tries them (attempts.ts: every address but the last
 * bounded by the attempt timeout), within one deadline and one AbortSignal. Shared by
 * `porter.connect` and `createConnection` (which opens the descriptor on a socket it
 * returned before).
 */
import { closeSync } from 'node:fs';
import * as native from '@porter/native';
import { canonicalIp } from './address.js';
import { attempt, type Dialed } from './attempt.js';
import { allFailed, attemptPlan, type Candidate, resolveCandidates } from './attempts.js';
import type { CheckedConnect } from './connect-options.js';
import { type DialSignal, race } from './deadline.js';
import { AbortError, ErrorCodes, fromNativeError } from './errors.js';
import type { Routes } from './routes.js';
import { sourceAddress } from './source.js';
import type { SocketOptions } from './types.js';

export type { Dialed } from './attempt.js';

/**
 * Told of a connect's steps as net.Socket's events tell them: of each attempt and how it
 * failed, and of the resolution of a host name (its 'lookup' event). createConnection's
 * sockets are.
 */
export interface DialEvents {
  onAttempt(address: string, port: number, family: number): void;
  onAttemptFailed(address: string, port: number, family: number, error: Error): void;
  onAttemptTimeout(address: string, port: number, family: number): void;
  onLookup(err: Error | null, address: string | undefined, family: number | undefined, host: string): void;
}

/**
 * A Porter's connect path (one per Porter): to where `target` says, within `timeout`
 * milliseconds for the whole connect (none when undefined), cancelled by `signal`.
 */
export type Dial = (
  target: CheckedConnect,
  timeout: number | undefined,
  signal: DialSignal | undefined,
  events?: DialEvents,
) => Promise<Dialed>;

/** The addresses a name resolves to (told to `events`), in the order to try them. */
async function resolve(
  target: CheckedConnect,
  signal: DialSignal | undefined,
  events: DialEvents | undefined,
  all: boolean,
  deadline: number | undefined,
): Promise<Candidate[]> {
  const { host, family } = target;
  let candidates: Candidate[];
  try {
    const resolving = resolveCandidates(host, family, target.hints, target.lookup, all);
    candidates = await race(resolving, deadline, signal, { address: host, port: target.port });
  } catch (err) {
    events?.onLookup(err as Error, undefined, undefined, host);
    throw err;
  }
  for (const c of candidates) events?.onLookup(null, c.address, c.family, host);
  return candidates;
}

/** Connects for one Porter: its routes, its socket options, and whether it is still open. */
export class Dialer {
  readonly #routes: Routes;
  readonly #socketOptions: SocketOptions;
  readonly #assertOpen: () => void;

  constructor(routes: Routes, socketOptions: SocketOptions, assertOpen: () => void) {
    this.#routes = routes;
    this.#socketOptions = socketOptions;
    this.#assertOpen = assertOpen;
  }

  /** Resolution, then the attempts in net.connect's order; rejects with net's errors. See {@link Dial}. */
  async dial(
    target: CheckedConnect,
    timeout: number | undefined,
    signal: DialSignal | undefined,
    events?: DialEvents,
  ): Promise<Dialed> {
    const { port, localAddress, hostFamily } = target;
    const deadline = timeout === undefined ? undefined : performance.now() + timeout;
    const plan = attemptPlan(target.family, localAddress, target.autoSelectFamily, target.attemptTimeout);
    // An IP literal is connected to in this very call (no await before the native connect):
    // a connect begun before the Porter is closed is in flight when it is.
    const candidates: Candidate[] =
      hostFamily !== 0
        ? [{ address: target.host, family: hostFamily }]
        : await resolve(target, signal, events, plan.all, deadline);
    // Only a connect with a signal has something to cancel (no closure for the others).
    const token = signal ? new native.CancelToken() : undefined;
    const onAbort = token === undefined ? undefined : (): void => token.cancel();
    if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
    const errors: Error[] = [];
    try {
      for (let i = 0; i < candidates.length; i++) {
        const { address: given, family } = candidates[i] as Candidate;
        const address = canonicalIp(given);
        const last = i === candidates.length - 1;
        const remaining = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
        // Every attempt but the last gets the attempt timeout (Node's happy eyeballs).
        const byAttempt = !last && (remaining === undefined || plan.attemptTimeout < remaining);
        events?.onAttempt(address, port, family);
        this.#assertOpen();
        const route = this.#routes.open(address, port, localAddress);
        const limit = byAttempt ? plan.attemptTimeout : remaining;
        const outcome = await attempt(route, limit, token, target.socketOptions, this.#socketOptions);
        if (!('error' in outcome)) return handOver(outcome, signal);
        const err = await failure(outcome.error, address, port, family, signal);
        if (byAttempt && outcome.error.code === 'ETIMEDOUT') events?.onAttemptTimeout(address, port, family);
        else events?.onAttemptFailed(address, port, family, err);
        // The connect's own deadline ends it; an attempt's lets the next address have its turn.
        if (!byAttempt && outcome.error.code === 'ETIMEDOUT' && deadline !== undefined) throw err;
        errors.push(err);
      }
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
    throw allFailed(errors);
  }
}

/** The connection, unless the signal aborted after the connect finished (then closed, its port aging). */
function handOver(dialed: Dialed, signal: DialSignal | undefined): Dialed {
  if (signal?.aborted) {
    closeSync(dialed.fd);
    dialed.lease.adopt(dialed.fd);
    dialed.lease.releaseAs(true);
    throw new AbortError(undefined, { cause: signal.reason });
  }
  return dialed;
}

/**
 * The error users see for a failed attempt; thrown at once for an abort or a closed
 * Porter, which end the connect.
 */
async function failure(
  e: native.ConnectError,
  address: string,
  port: number,
  family: 4 | 6,
  signal: DialSignal | undefined,
): Promise<Error> {
  if (e.code === ErrorCodes.ABORT_ERR) throw new AbortError(undefined, { cause: signal?.reason });
  if (e.code === ErrorCodes.CLOSED) throw fromNativeError(e, signal);
  if (e.syscall === 'connect' && (e.localAddress === '0.0.0.0' || e.localAddress === '::')) {
    // The pool's unspecified address: tell the one the kernel used for the connect (a
    // bind error keeps the address it bound).
    e.localAddress = (await sourceAddress(address, port, family)) ?? e.localAddress;
  }
  return fromNativeError(e, signal);
}
