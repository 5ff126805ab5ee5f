/**
 * The doctor's report from what was read: the settings and their findings, porter's
 * capacity, the host's connections per destination, its listeners, and connection
 * tracking. No reading here (see `gather` in ../doctor.ts): the same inputs give the same
 * report.
 */
import type { Capacity, HostPorts } from '@porter/core';
import type { HostSockets } from '@porter/core/internal';
import type { HostSettings } from '../host.js';
import { capacitySection, porterRange } from './capacity.js';
import { connectionsFinding, destinationsReport, socketsSummary, type Zones } from './connections.js';
import type { ConntrackFacts } from './conntrack.js';
import { conntrackFindings, conntrackReport } from './conntrack-report.js';
import { listenersFinding, listenersReport } from './listeners.js';
import type { DoctorOptions, DoctorReport } from './report.js';
import { settingsFindings } from './settings.js';

/** Everything the doctor reads from the host. */
export interface DoctorInputs {
  settings: HostSettings;
  /** The port settings and kernel features, as porter reads them (`hostPorts()`). */
  host: HostPorts;
  /** A Porter's capacity with the options, or why one cannot be made. */
  capacity: Capacity | Error;
  /** The zones of ports counted per destination: `zonesOf(host, capacity)`. */
  zones: Zones;
  /** The host's TCP sockets with ports taken in `zones`, or why they cannot be read. */
  sockets: HostSockets | Error;
  conntrack: ConntrackFacts;
  /** TCP port to service name (/etc/services). */
  services: ReadonlyMap<number, string>;
}

/** The report for what was read, and `options`. */
export function diagnose(inputs: DoctorInputs, options: DoctorOptions): DoctorReport {
  const { settings, host, capacity, zones, sockets } = inputs;
  const range = porterRange(options, host);
  const summary = socketsSummary(sockets, zones);
  const section = capacitySection(settings, host, capacity, options, summary.kernel_ports);
  const porter = section.capacity.porter;

  const read = !(sockets instanceof Error);
  const destinations = read ? destinationsReport(sockets, summary) : null;
  const listeners = read ? listenersReport(sockets, range, zones.porter, host.reserved, inputs.services) : null;
  const conntrack = conntrackReport(inputs.conntrack, summary.connections);

  return {
    kernel: settings.kernel,
    settings: {
      ip_local_port_range: host.ephemeral,
      ip_local_reserved_ports: host.reserved,
      port_settings_read: host.readFromSystem,
      tcp_tw_reuse: settings.tcpTwReuse ?? null,
      tcp_timestamps: settings.tcpTimestamps ?? null,
      open_files: settings.openFiles ?? null,
      nr_open: settings.nrOpen ?? null,
      file_max: settings.fileMax ?? null,
    },
    kernel_features: {
      ip_bind_address_no_port: host.features.bindAddressNoPort,
      ip_local_port_range: host.features.localPortRange,
    },
    capacity: section.capacity,
    sockets: summary,
    destinations,
    listeners,
    conntrack,
    findings: [
      ...section.findings,
      ...settingsFindings(settings, host, porter, range, options),
      listenersFinding(listeners, range),
      connectionsFinding(summary, destinations),
      ...conntrackFindings(conntrack, porter?.total ?? null),
    ],
  };
}
