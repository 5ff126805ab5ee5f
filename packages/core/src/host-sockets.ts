/**
 * The host's own TCP sockets, whoever opened them, as the kernel lists them (netlink
 * sock_diag, or /proc/net/tcp{,6} where that is missing): every listener, and every
 * outgoing connection grouped by destination, with the ports of given zones that a new
 * connection to it cannot have. For `porter doctor`; the grouping is the core's
 * (crates/porter-core/src/diag.rs).
 */
import * as native from '@porter/native';
import { callNative, invalidArgType, invalidArgValue } from './errors.js';
import { validatePort } from './validate.js';

/** Where the sockets are read from. */
export type SocketSourceName = 'sock_diag' | 'proc';

/** A listening socket. */
export interface HostListener {
  /** The address it listens on ('0.0.0.0' or '::' for every address). */
  address: string;
  port: number;
  /** The user that owns it. */
  uid: number;
  /** Its inode: `socket:[inode]` among its process's descriptors. */
  inode: number;
  /** Connections waiting in its accept queue. */
  queued: number;
  /** Connections to it (accepted or queued) in a state that holds a 4-tuple. */
  connections: number;
}

/** The host's connections to one destination. */
export interface HostDestination {
  /** The remote address (an IPv4-mapped IPv6 address reads as IPv4). */
  address: string;
  port: number;
  /** Sockets towards it per state (`established`, `syn_sent`, ..., `time_wait`, ...). */
  states: Record<string, number>;
  /** Sockets towards it in a state that holds a 4-tuple: the sum of `states`. */
  connections: number;
  /** The source addresses holding ports towards it. */
  sources: string[];
  /**
   * For each zone asked for, its ports a new connection to this destination cannot have:
   * those its busiest source address holds towards it, and those a listener has bound.
   */
  taken: number[];
}

/** The host's TCP sockets at one moment (this process's network namespace). */
export interface HostSockets {
  source: SocketSourceName;
  /** Every listening socket, by port then address. */
  listeners: HostListener[];
  /** Every destination of an outgoing connection, busiest first. */
  destinations: HostDestination[];
  /** Connections accepted by (or queued at) this host's listeners: not destinations. */
  incoming: number;
}

/**
 * The host's TCP sockets now, with, per destination, the ports of each of `zones`
 * (sorted, disjoint `[first, last]` intervals) a new connection to it cannot have.
 * `source` forces a source; by default sock_diag, then /proc. Throws the system's code
 * (`EACCES`, `ENOENT`, ...) when no source can be read.
 */
export function hostSockets(
  zones: readonly (readonly (readonly [number, number])[])[],
  source?: SocketSourceName,
): HostSockets {
  if (!Array.isArray(zones)) throw invalidArgType('zones', 'an array of interval lists', zones);
  const intervals = zones.map((zone, z) => {
    if (!Array.isArray(zone)) throw invalidArgType(`zones[${z}]`, 'an array of [first, last] intervals', zone);
    return zone.map(([a, b], i) => ({
      first: validatePort(a, `zones[${z}][${i}][0]`),
      last: validatePort(b, `zones[${z}][${i}][1]`),
    }));
  });
  if (source !== undefined && source !== 'sock_diag' && source !== 'proc') {
    throw invalidArgValue('source', source, "must be 'sock_diag' or 'proc'");
  }
  const h = callNative(() => native.hostSockets(intervals, source));
  return {
    source: h.source as SocketSourceName,
    listeners: h.listeners,
    destinations: h.destinations.map((d) => {
      const states: Record<string, number> = {};
      let connections = 0;
      h.states.forEach((name, i) => {
        const n = d.states[i] ?? 0;
        states[name] = n;
        connections += n;
      });
      return { address: d.address, port: d.port, states, connections, sources: d.sources, taken: d.taken };
    }),
    incoming: h.incoming,
  };
}
