/**
 * `porter doctor`: what this host gives a process that opens very many outgoing
 * connections, the capacity porter will have with the given options (and the kernel's
 * alone), what the host's own connections leave per destination, the listening services
 * in porter's range, connection tracking and NAT, and for each finding what to change,
 * with the command where there is one. Reads only; changes nothing.
 *
 * The parts, in doctor/: the shapes (report.ts), porter's capacity (capacity.ts), the
 * settings' findings (settings.ts), the host's connections (connections.ts), listeners
 * (listeners.ts), conntrack and NAT (conntrack.ts reads, conntrack-report.ts judges),
 * the report from all of it (diagnose.ts), and the text for people (format.ts).
 */
import { hostPorts } from '@porter/core';
import { porterCapacity } from './doctor/capacity.js';
import { readSockets, zonesOf } from './doctor/connections.js';
import { readConntrack } from './doctor/conntrack.js';
import { type DoctorInputs, diagnose } from './doctor/diagnose.js';
import { formatReport } from './doctor/format.js';
import { readServices } from './doctor/listeners.js';
import type { DoctorOptions } from './doctor/report.js';
import { readHostSettings } from './host.js';
import { wantsColor } from './render.js';

/** Reads everything the doctor reports on, now. */
export function gather(options: DoctorOptions): DoctorInputs {
  const host = hostPorts();
  const capacity = porterCapacity(options);
  const zones = zonesOf(host, capacity);
  return {
    settings: readHostSettings(),
    host,
    capacity,
    zones,
    sockets: readSockets(zones),
    conntrack: readConntrack(),
    services: readServices(),
  };
}

/** Runs the doctor; returns the exit code (0 nothing to change, 1 something to change). */
export function runDoctor(options: DoctorOptions): number {
  const report = diagnose(gather(options), options);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatReport(report, wantsColor(process.stdout), options.top)}\n`);
  return report.findings.some((f) => f.status === 'warn') ? 1 : 0;
}
