/**
 * One native connect on a route: what the core answers, decoded in this one place, as
 * the connected descriptor and its lease, or the error as data. A connect the core
 * finished at once is handed over a loop turn later, as net.connect's (turn.ts).
 */
import * as native from '@porter/native';
import { fromThrown } from './errors.js';
import { PortLease } from './lease.js';
import type { Route } from './routes.js';
import { nextTurn } from './turn.js';
import type { SocketOptions } from './types.js';

/**
 * A connected descriptor and the lease on its port. The core owns the descriptor until
 * `lease.adopt(fd)` hands it over, once it has its owner (see {@link PortLease.adopt}).
 */
export interface Dialed {
  readonly fd: number;
  readonly lease: PortLease;
}

/** Lease ids below this cross from the core packed beside the descriptor. */
const PACKED_LEASE_LIMIT = 2 ** 24;

/** `fd * 2^24 + leaseId`, or `{ fd, leaseId }` for a lease id past 2^24 (256 or more source addresses). */
function unpack(result: number | native.Connection): { fd: number; leaseId: number } {
  if (typeof result !== 'number') return { fd: result.fd, leaseId: result.leaseId };
  // `| 0` (exact below 2^24): an integer V8 keeps as a small integer in the lease, where
  // the remainder of a double would be a boxed number of 16 bytes more per connection.
  const leaseId = (result % PACKED_LEASE_LIMIT) | 0;
  return { fd: (result - leaseId) / PACKED_LEASE_LIMIT, leaseId };
}

/**
 * One native connect to `route`'s destination, bounded by `limit` ms, cancelled by
 * `token`, with the connect's own socket options (`own`) over the Porter's (`ours`).
 */
export async function attempt(
  route: Route,
  limit: number | undefined,
  token: native.CancelToken | undefined,
  own: native.SocketOptions | undefined,
  ours: SocketOptions,
): Promise<Dialed | native.ConnectFailure> {
  // Settled at once when the connect is already over (usual on loopback), else a promise.
  let pending: ReturnType<typeof native.routeConnect>;
  try {
    pending = native.routeConnect(route.native, limit, token, own);
  } catch (thrown) {
    throw fromThrown(thrown);
  }
  let result: Awaited<typeof pending>;
  if (pending instanceof Promise) {
    result = await pending;
  } else {
    await nextTurn();
    result = pending;
  }
  if (typeof result !== 'number' && 'error' in result) return result;
  const { fd, leaseId } = unpack(result);
  // The core keeps the descriptor and the lease until they are adopted, which the caller
  // does only once the descriptor has its owner (a socket's handle, or closed): a thread
  // that stops at any point in between (a worker terminated or exiting) loses neither,
  // since its teardown closes what was not adopted and is still the connection, and
  // gives back the port of everything not released.
  const lease = new PortLease(
    route,
    leaseId,
    own?.lingerZeroOnClose ?? ours.lingerZeroOnClose ?? false,
    own?.keepAlive !== undefined || ours.keepAlive !== undefined,
  );
  return { fd, lease };
}
