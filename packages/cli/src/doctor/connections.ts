/**
 * The host's own connections per destination, from the kernel (every process's, not
 * porter's pools): how many, in which states, and how many ports a new connection to each
 * destination can still have in the kernel's range and among the ports porter binds
 * itself. Read with @porter/core's `hostSockets()` (netlink sock_diag, or /proc/net/tcp).
 */
import type { Capacity, HostPorts } from '@porter/core';
import { type HostSockets, hostSockets } from '@porter/core/internal';
import { remoteLabel } from '../pools.js';
import { fmt, type Interval, subtract, total } from './ports.js';
import type { DestinationReport, Finding, SocketsSummary, TcpStateName } from './report.js';

/** The zones a destination's ports are counted in: the kernel's picks, porter's own binds. */
export interface Zones {
  /** ip_local_port_range less ip_local_reserved_ports. */
  kernel: [number, number][];
  /** The ports porter binds itself (`Capacity#explicitPorts`), or null when porter cannot run. */
  porter: [number, number][] | null;
}

export function zonesOf(host: HostPorts, capacity: Capacity | Error): Zones {
  return {
    kernel: subtract(host.ephemeral, host.reserved),
    porter: capacity instanceof Error ? null : capacity.explicitPorts,
  };
}

/** The host's sockets with each destination's ports taken in `zones`, or why they cannot be read. */
export function readSockets(zones: Zones): HostSockets | Error {
  try {
    return hostSockets([zones.kernel, zones.porter ?? []]);
  } catch (err) {
    return err as Error;
  }
}

/** The `sockets` summary. */
export function socketsSummary(sockets: HostSockets | Error, zones: Zones): SocketsSummary {
  const read = !(sockets instanceof Error);
  return {
    source: read ? sockets.source : null,
    reason: read ? null : `${(sockets as Error & { code?: string }).code ?? 'error'}: ${sockets.message}`,
    connections: read ? sockets.destinations.reduce((n, d) => n + d.connections, 0) : null,
    destinations: read ? sockets.destinations.length : null,
    incoming: read ? sockets.incoming : null,
    kernel_ports: total(zones.kernel),
    porter_ports: zones.porter === null ? null : total(zones.porter as Interval[]),
  };
}

/** Every destination, busiest first, with its ports left in each zone. */
export function destinationsReport(sockets: HostSockets, summary: SocketsSummary): DestinationReport[] {
  return sockets.destinations.map((d) => ({
    destination: remoteLabel(d.address, d.port),
    connections: d.connections,
    states: d.states as Record<TcpStateName, number>,
    local_addresses: d.sources,
    ports_left: {
      kernel: Math.max(0, summary.kernel_ports - (d.taken[0] ?? 0)),
      porter: summary.porter_ports === null ? null : Math.max(0, summary.porter_ports - (d.taken[1] ?? 0)),
    },
  }));
}

/** Destinations whose share of the kernel's range left is below this are a finding. */
const LOW_SHARE = 0.1;

/** What the connections say: destinations short of the kernel's ports; or why they could not be read. */
export function connectionsFinding(summary: SocketsSummary, destinations: DestinationReport[] | null): Finding {
  if (destinations === null) {
    return {
      id: 'connections',
      status: 'info',
      value: 'unknown',
      message: `the host's connections could not be read (${summary.reason})`,
    };
  }
  const value = `${fmt(summary.connections ?? 0)} to ${fmt(destinations.length)} destination(s) (${summary.source})`;
  const low = destinations.filter((d) => d.ports_left.kernel < summary.kernel_ports * LOW_SHARE);
  if (low.length === 0) {
    return {
      id: 'connections',
      status: 'ok',
      value,
      message: `every destination has at least ${LOW_SHARE * 100} % of the kernel's ${fmt(summary.kernel_ports)} ports left`,
    };
  }
  const named = low
    .slice(0, 3)
    .map((d) => `${d.destination} (${fmt(d.ports_left.kernel)} left)`)
    .join(', ');
  const porter =
    summary.porter_ports === null
      ? ''
      : `; porter binds ports of its own outside that range (${fmt(summary.porter_ports)} per destination)`;
  return {
    id: 'connections',
    status: 'info',
    value,
    message: `${plural(low.length)} less than ${LOW_SHARE * 100} % of the kernel's ${fmt(summary.kernel_ports)} ports left: ${named}${low.length > 3 ? ', ...' : ''}. A connect() that lets the kernel pick (net.connect) fails there with EADDRNOTAVAIL once they are gone${porter}`,
  };
}

const plural = (n: number): string => (n === 1 ? '1 destination has' : `${fmt(n)} destinations have`);
