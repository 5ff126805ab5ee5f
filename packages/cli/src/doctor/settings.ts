/**
 * The findings on the host's settings: TIME_WAIT reuse and TCP timestamps, the open-file
 * limits, the ephemeral and reserved ports against porter's range and mode, and the
 * kernel's socket options porter relies on. Each says what to change, with the command.
 */
import type { HostPorts } from '@porter/core';
import { type HostSettings, overlap } from '../host.js';
import { finite, fmt, size, span } from './ports.js';
import type { DoctorOptions, Finding, PorterCapacity } from './report.js';

function twReuseFinding(reuse: number | undefined): Finding {
  if (reuse === undefined) {
    return { id: 'tcp_tw_reuse', status: 'info', value: 'unknown', message: 'net.ipv4.tcp_tw_reuse could not be read' };
  }
  if (reuse === 1) {
    return {
      id: 'tcp_tw_reuse',
      status: 'ok',
      value: '1',
      message: 'the kernel reuses a TIME_WAIT 4-tuple for a new connection when it is safe',
    };
  }
  return {
    id: 'tcp_tw_reuse',
    status: 'warn',
    value: String(reuse),
    message:
      reuse === 2
        ? 'TIME_WAIT reuse on loopback only: towards other hosts, a port reused after aging can fail with EADDRNOTAVAIL while its TIME_WAIT lasts (60 s)'
        : 'TIME_WAIT reuse is off: a port reused after aging can fail with EADDRNOTAVAIL while its TIME_WAIT lasts (60 s)',
    fix: "sysctl -w net.ipv4.tcp_tw_reuse=1 && echo 'net.ipv4.tcp_tw_reuse = 1' > /etc/sysctl.d/60-porter.conf",
  };
}

function timestampsFinding(stamps: number | undefined): Finding {
  if (stamps === undefined) {
    return {
      id: 'tcp_timestamps',
      status: 'info',
      value: 'unknown',
      message: 'net.ipv4.tcp_timestamps could not be read',
    };
  }
  if (stamps === 0) {
    return {
      id: 'tcp_timestamps',
      status: 'warn',
      value: '0',
      message: 'TCP timestamps are off, and tcp_tw_reuse works only with them',
      fix: "sysctl -w net.ipv4.tcp_timestamps=1 && echo 'net.ipv4.tcp_timestamps = 1' > /etc/sysctl.d/60-porter-timestamps.conf",
    };
  }
  return {
    id: 'tcp_timestamps',
    status: 'ok',
    value: String(stamps),
    message: 'TCP timestamps are on (tcp_tw_reuse needs them)',
  };
}

/** The descriptor limit against the connections porter's ports allow; none when porter cannot run. */
function openFilesFinding(settings: HostSettings, porter: PorterCapacity | null, destinations: number): Finding[] {
  const files = settings.openFiles;
  if (files === undefined) {
    return [{ id: 'open_files', status: 'info', value: 'unknown', message: 'the open-file limit could not be read' }];
  }
  if (porter === null) return [];
  const value = `soft ${files.soft}, hard ${files.hard}`;
  const wanted = porter.per_destination * destinations;
  const soft = finite(files.soft);
  const hard = finite(files.hard);
  const raiseTo = Math.min(wanted + 1024, finite(settings.nrOpen));
  if (soft >= wanted) {
    return [{ id: 'open_files', status: 'ok', value, message: 'the descriptor limit is above what the ports allow' }];
  }
  if (soft < hard) {
    return [
      {
        id: 'open_files',
        status: 'warn',
        value,
        message: `every connection is a descriptor: the soft limit caps this process at ${fmt(soft)} connections, below the ${fmt(wanted)} its ports allow (Node raises its soft limit to the hard one at start; other programs may not)`,
        fix: `ulimit -n ${files.hard === 'unlimited' ? raiseTo : Math.min(hard, raiseTo)}`,
      },
    ];
  }
  return [
    {
      id: 'open_files',
      status: 'warn',
      value,
      message: `every connection is a descriptor: the hard limit caps a process at ${fmt(hard)} connections, below the ${fmt(wanted)} its ports allow. Raise it as root in the shell that starts the process, or with LimitNOFILE=${raiseTo} in a systemd unit`,
      fix: `ulimit -n ${raiseTo}`,
    },
  ];
}

/** The ephemeral range against porter's range and mode; the reserved ports in porter's range. */
function rangeFindings(host: HostPorts, range: [number, number], options: DoctorOptions): Finding[] {
  const ephemeral = host.ephemeral;
  const rangeText = `${span(ephemeral)} (${fmt(size(ephemeral))} ports)${host.readFromSystem ? '' : ', Linux default: /proc not readable'}`;
  const inEphemeral = overlap(range[0], range[1], [ephemeral]);
  const findings: Finding[] = [];
  if (options.mode === 'pool' && inEphemeral > 0) {
    findings.push({
      id: 'ip_local_port_range',
      status: 'warn',
      value: rangeText,
      message: `in mode 'pool' porter binds the ${fmt(inEphemeral)} ports of its range inside the kernel's ephemeral range itself: while it holds them, every other outgoing connection of this host has that many ports fewer`,
      fix:
        range[0] < ephemeral[0]
          ? `porter hold ... --mode hybrid, or --range ${range[0]}-${ephemeral[0] - 1}`
          : 'porter hold ... --mode hybrid',
    });
  } else {
    findings.push({
      id: 'ip_local_port_range',
      status: 'ok',
      value: rangeText,
      message:
        inEphemeral > 0
          ? `porter binds ports outside it only; the kernel picks those of porter's range inside it (${fmt(inEphemeral)}) at connect()`
          : "porter's range lies outside it: porter takes no port the kernel hands out to others",
    });
  }
  if (host.reserved.length > 0) {
    findings.push({
      id: 'ip_local_reserved_ports',
      status: 'ok',
      value: host.reserved.map(span).join(','),
      message: `${fmt(overlap(range[0], range[1], host.reserved))} of them in porter's range: porter never binds them, and the kernel never picks them`,
    });
  }
  return findings;
}

/** IP_BIND_ADDRESS_NO_PORT and IP_LOCAL_PORT_RANGE, as porter probed them. */
function featureFindings(host: HostPorts, porter: PorterCapacity | null, options: DoctorOptions): Finding[] {
  const ephemeral = host.ephemeral;
  const noPort: Finding = host.features.bindAddressNoPort
    ? {
        id: 'kernel_ip_bind_address_no_port',
        status: 'ok',
        value: 'yes',
        message: 'the kernel can pick a port at connect() for a chosen source address, knowing the destination',
      }
    : {
        id: 'kernel_ip_bind_address_no_port',
        status: 'warn',
        value: 'no',
        message:
          'this kernel lacks IP_BIND_ADDRESS_NO_PORT (Linux 4.2): with source addresses (--local), a port the kernel picks (its window, the fallback) is taken for every destination at once. Run on Linux 4.2 or newer, or leave the kernel no share: --mode pool on a range outside the ephemeral one',
        fix: `porter hold ... --mode pool --range 1024-${ephemeral[0] - 1}`,
      };
  const window = porter?.kernel_window ?? null;
  const narrowed: Finding = host.features.localPortRange
    ? {
        id: 'kernel_ip_local_port_range',
        status: 'ok',
        value: 'yes',
        message:
          "IP_LOCAL_PORT_RANGE keeps the kernel's picks inside porter's range when the range covers only part of the ephemeral one",
      }
    : {
        id: 'kernel_ip_local_port_range',
        status: window !== null && overlap(window[0], window[1], [ephemeral]) < size(ephemeral) ? 'info' : 'ok',
        value: 'no',
        message:
          "this kernel lacks IP_LOCAL_PORT_RANGE (Linux 6.3): where porter's range covers part of the ephemeral range, the kernel picks anywhere in the ephemeral range (this takes nothing from the host; porter tracks the port). Mode kernel then needs a range that covers the whole ephemeral range",
        ...(options.mode === 'kernel' ? { fix: `porter hold ... --mode kernel --range ${span(ephemeral)}` } : {}),
      };
  return [noPort, narrowed];
}

/** Every finding on the settings, in the report's order. */
export function settingsFindings(
  settings: HostSettings,
  host: HostPorts,
  porter: PorterCapacity | null,
  range: [number, number],
  options: DoctorOptions,
): Finding[] {
  return [
    twReuseFinding(settings.tcpTwReuse),
    timestampsFinding(settings.tcpTimestamps),
    ...openFilesFinding(settings, porter, options.destinations),
    ...rangeFindings(host, range, options),
    ...featureFindings(host, porter, options),
  ];
}
