/**
 * Listening services inside porter's range, and the exact ip_local_reserved_ports line
 * that protects them. A service that binds without SO_REUSEADDR (many do) fails with
 * EADDRINUSE on a port an outgoing connection holds, and for the TIME_WAIT period after:
 * porter never binds a port that has a listener, but a service that restarts finds its
 * port held by whatever took it meanwhile. The ports at risk from porter are those it
 * binds itself (in mode hybrid, its range outside the kernel's ephemeral range, where
 * services listen); inside the ephemeral range the kernel picks for every connect() of
 * the host alike, porter's or not. Reserved ports are never bound by porter, and never
 * picked by the kernel. Service names come from /etc/services.
 */
import { readFileSync } from 'node:fs';
import type { HostSockets } from '@porter/core/internal';
import { compress, fmt, type Interval, span, within } from './ports.js';
import type { Finding, ListenersReport, ListeningPort } from './report.js';

/** TCP port to service name, from /etc/services (empty where it cannot be read). */
export function readServices(path = '/etc/services'): Map<number, string> {
  const names = new Map<number, string>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const m = /^([^\s#]+)\s+(\d+)\/tcp\b/.exec(line);
    if (m !== null && !names.has(Number(m[2]))) names.set(Number(m[2]), m[1] as string);
  }
  return names;
}

/**
 * Every listening port, and the reserved-ports line for those porter would bind
 * (`porterPorts`: the ports it binds itself, null when it cannot run).
 */
export function listenersReport(
  sockets: HostSockets,
  range: [number, number],
  porterPorts: readonly Interval[] | null,
  reserved: readonly Interval[],
  services: ReadonlyMap<number, string>,
): ListenersReport {
  const byPort = new Map<number, ListeningPort>();
  for (const l of sockets.listeners) {
    let p = byPort.get(l.port);
    if (p === undefined) {
      p = {
        port: l.port,
        addresses: [],
        service: services.get(l.port) ?? null,
        connections: 0,
        in_porter_range: l.port >= range[0] && l.port <= range[1],
        porter_binds: porterPorts !== null && within(l.port, porterPorts),
        reserved: within(l.port, reserved),
      };
      byPort.set(l.port, p);
    }
    if (!p.addresses.includes(l.address)) p.addresses.push(l.address);
    p.connections += l.connections;
  }
  const ports = [...byPort.values()].sort((a, b) => a.port - b.port);
  // Porter binds no reserved port: those it binds are unprotected.
  const unprotected = ports.filter((p) => p.porter_binds).map((p) => p.port);
  const line = unprotected.length === 0 ? null : compress(reserved, unprotected);
  return {
    ports,
    unprotected,
    reserved_ports: line,
    command:
      line === null
        ? null
        : `sysctl -w net.ipv4.ip_local_reserved_ports=${line} && echo 'net.ipv4.ip_local_reserved_ports = ${line}' > /etc/sysctl.d/60-porter-reserved.conf`,
  };
}

const named = (p: ListeningPort): string => (p.service === null ? `${p.port}` : `${p.port} (${p.service})`);

/** The `listeners` finding: services on ports porter binds, which no reserved port protects. */
export function listenersFinding(report: ListenersReport | null, range: [number, number]): Finding {
  if (report === null) {
    return {
      id: 'listeners',
      status: 'info',
      value: 'unknown',
      message: 'the listening sockets could not be read (see the connections finding)',
    };
  }
  const inRange = report.ports.filter((p) => p.in_porter_range);
  if (report.unprotected.length === 0) {
    return {
      id: 'listeners',
      status: 'ok',
      value: inRange.length === 0 ? 'none' : inRange.map(named).join(', '),
      message:
        inRange.length === 0
          ? `no service listens in porter's range ${span(range)}`
          : "no service listens on a port porter binds itself (those in porter's range are reserved, or inside the kernel's ephemeral range, where the kernel picks for every connect() of the host alike)",
    };
  }
  const risky = report.ports.filter((p) => report.unprotected.includes(p.port));
  return {
    id: 'listeners',
    status: 'warn',
    value: risky.map(named).join(', '),
    message: `${fmt(risky.length)} service port(s) among those porter binds itself in its range ${span(range)}, not reserved: porter never binds a port while it has a listener, but a service that restarts (and binds without SO_REUSEADDR, as many do) fails with EADDRINUSE while porter holds its port for a connection, and for its TIME_WAIT after. Reserved ports are never bound by porter, nor picked by the kernel`,
    ...(report.command === null ? {} : { fix: report.command }),
  };
}
