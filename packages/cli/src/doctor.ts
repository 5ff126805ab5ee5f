/**
 * `porter doctor`: what this host gives a process that opens very many outgoing
 * connections, the capacity porter will have with the given options (and the kernel's
 * alone), and for each finding what to change, with the command where there is one.
 * Reads only; changes nothing. The port ranges, the kernel's features and porter's split
 * of its range come from @porter/core (`hostPorts()`, `Porter#capacity()`); the rest
 * from /proc (host.ts).
 */
import { type Capacity, type HostPorts, hostPorts, Porter, type PortMode } from '@porter/core';
import { type HostSettings, overlap, readHostSettings } from './host.js';
import { keyValues, table, wantsColor } from './render.js';

/** Options of the doctor. */
export interface DoctorOptions {
  /** Porter's port range (default [1024, 65535]), or 'system'. */
  range: [number, number] | 'system';
  /** Porter's mode (default 'hybrid'). */
  mode: PortMode;
  /** Source addresses (default: none; the kernel picks the address). */
  local: string[];
  /** Whether the kernel may pick a port once porter has none left (default true). */
  fallback: boolean;
  /** Destinations the process will talk to, for the total (default 1). */
  destinations: number;
  json: boolean;
}

/** One finding: a setting, what it is, and what to do. */
export interface Finding {
  /** Stable id: `tcp_tw_reuse`, `tcp_timestamps`, `open_files`, `mode`, ... */
  id: string;
  /** `ok`: nothing to do; `warn`: change it for porter's sake; `info`: worth knowing. */
  status: 'ok' | 'warn' | 'info';
  /** The value read, for people. */
  value: string;
  message: string;
  /** What to change: the exact command where there is one. */
  fix?: string;
}

/** Porter's share of the connections to one destination (all source addresses together). */
export interface PorterCapacity {
  mode: PortMode;
  range: [number, number];
  local_addresses: string[];
  /** Ports porter binds itself, as inclusive intervals (per source address). */
  explicit_ports: [number, number][];
  /** The part of the range the kernel picks in (modes hybrid and kernel), or null. */
  kernel_window: [number, number] | null;
  /** Whether IP_LOCAL_PORT_RANGE keeps the kernel's picks inside that window. */
  kernel_window_narrowed: boolean;
  /** Connections from ports porter binds itself. */
  explicit: number;
  /** Connections from ports the kernel picks in its window of the range. */
  kernel: number;
  /** Then the kernel fallback: ephemeral ports outside the range (0 with --no-fallback). */
  fallback: number;
  per_destination: number;
  /** For `destinations` destinations, bounded by the soft open-file limit. */
  total: number;
}

/** What `porter doctor --json` prints. */
export interface DoctorReport {
  kernel: string;
  settings: {
    ip_local_port_range: [number, number];
    ip_local_reserved_ports: [number, number][];
    /** False when /proc could not be read and Linux's defaults stand in for the two above. */
    port_settings_read: boolean;
    tcp_tw_reuse: number | null;
    tcp_timestamps: number | null;
    open_files: { soft: number | 'unlimited'; hard: number | 'unlimited' } | null;
    nr_open: number | null;
    file_max: number | null;
  };
  kernel_features: { ip_bind_address_no_port: boolean; ip_local_port_range: boolean };
  capacity: {
    /** Null when porter cannot run with these options here (see the `mode` finding). */
    porter: PorterCapacity | null;
    /** The kernel alone, without porter. */
    kernel_alone: {
      /** connect() without bind(): the kernel picks a port free for that destination. */
      per_destination: number;
      /** bind(address, 0) before connect() (a chosen source address): ports for all destinations together. */
      per_source_address: number;
      total: number;
    };
    destinations: number;
  };
  findings: Finding[];
}

const size = (r: readonly [number, number]): number => r[1] - r[0] + 1;
const finite = (n: number | 'unlimited' | undefined | null): number =>
  n === undefined || n === null || n === 'unlimited' ? Number.POSITIVE_INFINITY : n;
const fmt = (n: number): string => (Number.isFinite(n) ? n.toLocaleString('en-US') : 'unlimited');
const span = ([a, b]: readonly [number, number]): string => (a === b ? `${a}` : `${a}-${b}`);

/** Ports of `range` in none of `excluded`. */
function outside(range: readonly [number, number], excluded: readonly (readonly [number, number])[]): number {
  let n = 0;
  for (let port = range[0]; port <= range[1]; port++) {
    if (!excluded.some(([a, b]) => port >= a && port <= b)) n++;
  }
  return n;
}

/** What porter will do with `options` here: its capacity, or why it cannot run. */
export function porterCapacity(options: DoctorOptions): Capacity | (Error & { code?: string }) {
  try {
    return new Porter({
      mode: options.mode,
      kernelFallback: options.fallback,
      ...(options.range !== undefined ? { portRange: options.range } : {}),
      ...(options.local.length > 0 ? { localAddresses: options.local } : {}),
    }).capacity();
  } catch (err) {
    return err as Error;
  }
}

/** The report for the host's settings, porter's view of its ports, and `options`. */
export function diagnose(
  settings: HostSettings,
  host: HostPorts,
  capacity: Capacity | (Error & { code?: string }),
  options: DoctorOptions,
): DoctorReport {
  const ephemeral = host.ephemeral;
  const reserved = host.reserved;
  const range: [number, number] = options.range === 'system' ? ephemeral : options.range;
  const locals = Math.max(1, options.local.length);
  const ephemeralFree = outside(ephemeral, reserved);
  const softFiles = finite(settings.openFiles?.soft);
  const findings: Finding[] = [];

  let porter: PorterCapacity | null = null;
  if (capacity instanceof Error) {
    findings.push({
      id: 'mode',
      status: 'warn',
      value: options.mode,
      message: `porter cannot run with these options here: ${capacity.message}`,
      fix:
        options.mode === 'kernel'
          ? `porter hold ... --mode hybrid, or --range ${span(ephemeral)}`
          : `porter hold ... --mode hybrid`,
    });
  } else {
    // The kernel fallback picks in the whole ephemeral range, for that destination: it
    // adds the ports outside porter's range (those inside are counted already).
    const fallback = options.fallback ? outside(ephemeral, [range, ...reserved]) * locals : 0;
    const explicit = capacity.explicit * locals;
    const kernel = capacity.kernel * locals;
    const perDestination = explicit + kernel + fallback;
    porter = {
      mode: capacity.mode,
      range,
      local_addresses: options.local,
      explicit_ports: capacity.explicitPorts,
      kernel_window: capacity.kernelWindow,
      kernel_window_narrowed: capacity.kernelWindowNarrowed,
      explicit,
      kernel,
      fallback,
      per_destination: perDestination,
      total: Math.min(perDestination * options.destinations, softFiles),
    };
  }

  const reuse = settings.tcpTwReuse;
  if (reuse === undefined) {
    findings.push({
      id: 'tcp_tw_reuse',
      status: 'info',
      value: 'unknown',
      message: 'net.ipv4.tcp_tw_reuse could not be read',
    });
  } else if (reuse === 1) {
    findings.push({
      id: 'tcp_tw_reuse',
      status: 'ok',
      value: '1',
      message: 'the kernel reuses a TIME_WAIT 4-tuple for a new connection when it is safe',
    });
  } else {
    findings.push({
      id: 'tcp_tw_reuse',
      status: 'warn',
      value: String(reuse),
      message:
        reuse === 2
          ? 'TIME_WAIT reuse on loopback only: towards other hosts, a port reused after aging can fail with EADDRNOTAVAIL while its TIME_WAIT lasts (60 s)'
          : 'TIME_WAIT reuse is off: a port reused after aging can fail with EADDRNOTAVAIL while its TIME_WAIT lasts (60 s)',
      fix: "sysctl -w net.ipv4.tcp_tw_reuse=1 && echo 'net.ipv4.tcp_tw_reuse = 1' > /etc/sysctl.d/60-porter.conf",
    });
  }
  const stamps = settings.tcpTimestamps;
  if (stamps === undefined) {
    findings.push({
      id: 'tcp_timestamps',
      status: 'info',
      value: 'unknown',
      message: 'net.ipv4.tcp_timestamps could not be read',
    });
  } else if (stamps === 0) {
    findings.push({
      id: 'tcp_timestamps',
      status: 'warn',
      value: '0',
      message: 'TCP timestamps are off, and tcp_tw_reuse works only with them',
      fix: "sysctl -w net.ipv4.tcp_timestamps=1 && echo 'net.ipv4.tcp_timestamps = 1' > /etc/sysctl.d/60-porter-timestamps.conf",
    });
  } else {
    findings.push({
      id: 'tcp_timestamps',
      status: 'ok',
      value: String(stamps),
      message: 'TCP timestamps are on (tcp_tw_reuse needs them)',
    });
  }

  const files = settings.openFiles;
  if (files === undefined) {
    findings.push({
      id: 'open_files',
      status: 'info',
      value: 'unknown',
      message: 'the open-file limit could not be read',
    });
  } else if (porter !== null) {
    const value = `soft ${files.soft}, hard ${files.hard}`;
    const wanted = porter.per_destination * options.destinations;
    const soft = finite(files.soft);
    const hard = finite(files.hard);
    const raiseTo = Math.min(wanted + 1024, finite(settings.nrOpen));
    if (soft >= wanted) {
      findings.push({
        id: 'open_files',
        status: 'ok',
        value,
        message: 'the descriptor limit is above what the ports allow',
      });
    } else if (soft < hard) {
      findings.push({
        id: 'open_files',
        status: 'warn',
        value,
        message: `every connection is a descriptor: the soft limit caps this process at ${fmt(soft)} connections, below the ${fmt(wanted)} its ports allow (Node raises its soft limit to the hard one at start; other programs may not)`,
        fix: `ulimit -n ${files.hard === 'unlimited' ? raiseTo : Math.min(hard, raiseTo)}`,
      });
    } else {
      findings.push({
        id: 'open_files',
        status: 'warn',
        value,
        message: `every connection is a descriptor: the hard limit caps a process at ${fmt(hard)} connections, below the ${fmt(wanted)} its ports allow. Raise it as root in the shell that starts the process, or with LimitNOFILE=${raiseTo} in a systemd unit`,
        fix: `ulimit -n ${raiseTo}`,
      });
    }
  }

  const rangeText = `${span(ephemeral)} (${fmt(size(ephemeral))} ports)${host.readFromSystem ? '' : ', Linux default: /proc not readable'}`;
  const inEphemeral = overlap(range[0], range[1], [ephemeral]);
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
  if (reserved.length > 0) {
    findings.push({
      id: 'ip_local_reserved_ports',
      status: 'ok',
      value: reserved.map(span).join(','),
      message: `${fmt(overlap(range[0], range[1], reserved))} of them in porter's range: porter never binds them, and the kernel never picks them`,
    });
  }

  const noPort = host.features.bindAddressNoPort;
  findings.push(
    noPort
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
        },
  );
  const window = porter?.kernel_window ?? null;
  const narrowed = host.features.localPortRange;
  findings.push(
    narrowed
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
        },
  );

  return {
    kernel: settings.kernel,
    settings: {
      ip_local_port_range: ephemeral,
      ip_local_reserved_ports: reserved,
      port_settings_read: host.readFromSystem,
      tcp_tw_reuse: settings.tcpTwReuse ?? null,
      tcp_timestamps: settings.tcpTimestamps ?? null,
      open_files: settings.openFiles ?? null,
      nr_open: settings.nrOpen ?? null,
      file_max: settings.fileMax ?? null,
    },
    kernel_features: { ip_bind_address_no_port: noPort, ip_local_port_range: narrowed },
    capacity: {
      porter,
      kernel_alone: {
        per_destination: ephemeralFree,
        per_source_address: ephemeralFree,
        total: Math.min(ephemeralFree * options.destinations, softFiles),
      },
      destinations: options.destinations,
    },
    findings,
  };
}

/** The report for people. */
export function formatReport(report: DoctorReport, color: boolean): string {
  const s = report.settings;
  const c = report.capacity;
  const out: string[] = [];
  out.push(`porter doctor: Linux ${report.kernel}`, '');
  out.push(
    keyValues(
      [
        ['ip_local_port_range', span(s.ip_local_port_range)],
        ['ip_local_reserved_ports', s.ip_local_reserved_ports.map(span).join(',') || '(none)'],
        ['tcp_tw_reuse', s.tcp_tw_reuse ?? 'unknown'],
        ['tcp_timestamps', s.tcp_timestamps ?? 'unknown'],
        [
          'open files (soft / hard)',
          s.open_files ? `${fmt(finite(s.open_files.soft))} / ${fmt(finite(s.open_files.hard))}` : 'unknown',
        ],
        [
          'fs.nr_open / fs.file-max',
          `${s.nr_open === null ? 'unknown' : fmt(s.nr_open)} / ${s.file_max === null ? 'unknown' : fmt(s.file_max)}`,
        ],
        ['IP_BIND_ADDRESS_NO_PORT', report.kernel_features.ip_bind_address_no_port ? 'yes' : 'no'],
        ['IP_LOCAL_PORT_RANGE', report.kernel_features.ip_local_port_range ? 'yes' : 'no'],
      ],
      color,
    ),
  );
  const plural = (n: number, word: string): string => `${fmt(n)} ${word}${n === 1 ? '' : 's'}`;
  const p = c.porter;
  const times = (n: number): number => n * c.destinations;
  const soft = finite(s.open_files?.soft);
  const rows: (string | number)[][] = [];
  if (p !== null) {
    const sources = p.local_addresses.length || 1;
    out.push(
      '',
      `Capacity: porter in mode ${p.mode} on ${span(p.range)} from ${plural(sources, 'source address')}` +
        `${p.local_addresses.length === 0 ? ' (the kernel picks it)' : ''}, ${plural(c.destinations, 'destination')}:`,
    );
    const explicitText = p.explicit_ports.length === 0 ? 'none' : p.explicit_ports.map(span).join(', ');
    rows.push(
      [`porter binds them itself (${explicitText})`, p.explicit, times(p.explicit)],
      [
        `the kernel picks them in the range (${p.kernel_window === null ? 'none' : span(p.kernel_window)}${p.kernel_window !== null && !p.kernel_window_narrowed && size(p.kernel_window) < size(s.ip_local_port_range) ? ', not narrowed: the kernel picks in all its range' : ''})`,
        p.kernel,
        times(p.kernel),
      ],
      ['then the kernel fallback (ephemeral ports outside the range)', p.fallback, times(p.fallback)],
      ['porter in all, at most one per open file', p.per_destination, p.total],
    );
  } else {
    out.push(
      '',
      `Capacity (porter cannot run with these options here: see the mode finding), ${plural(c.destinations, 'destination')}:`,
    );
  }
  rows.push(
    ['the kernel alone: connect() without bind()', c.kernel_alone.per_destination, c.kernel_alone.total],
    [
      'the kernel alone: bind(address, 0) before connect()',
      c.kernel_alone.per_source_address,
      Math.min(c.kernel_alone.per_source_address, soft),
    ],
  );
  out.push(table(['connections', 'per destination', `to ${plural(c.destinations, 'destination')}`], rows, color));
  out.push('', 'Findings:');
  const mark = { ok: 'ok  ', warn: 'WARN', info: 'info' } as const;
  for (const f of report.findings) {
    out.push(`  ${mark[f.status]} ${f.id} = ${f.value}: ${f.message}`);
    if (f.fix !== undefined) out.push(`       fix: ${f.fix}`);
  }
  const warnings = report.findings.filter((f) => f.status === 'warn').length;
  out.push(
    '',
    warnings === 0 ? 'Nothing to change.' : `${warnings} setting(s) to change; porter doctor changed nothing.`,
  );
  return out.join('\n');
}

/** Runs the doctor; returns the exit code (0 nothing to change, 1 something to change). */
export function runDoctor(options: DoctorOptions): number {
  const report = diagnose(readHostSettings(), hostPorts(), porterCapacity(options), options);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatReport(report, wantsColor(process.stdout))}\n`);
  return report.findings.some((f) => f.status === 'warn') ? 1 : 0;
}
