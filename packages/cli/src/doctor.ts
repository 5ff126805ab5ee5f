/**
 * `porter doctor`: what this host gives a process that opens very many outgoing
 * connections, the capacity porter will have with the given options (and the kernel's
 * alone), and for each finding the command that changes it. Reads only; changes nothing.
 */
import { type HostSettings, overlap, readHostSettings } from './host.js';
import { keyValues, table, wantsColor } from './render.js';

/** Options of the doctor. */
export interface DoctorOptions {
  /** Porter's port range (default [1024, 65535]), or 'system'. */
  range: [number, number] | 'system';
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
  /** Stable id: `tcp_tw_reuse`, `tcp_timestamps`, `open_files`, ... */
  id: string;
  /** `ok`: nothing to do; `warn`: change it for porter's sake; `info`: worth knowing. */
  status: 'ok' | 'warn' | 'info';
  /** The value read, for people. */
  value: string;
  message: string;
  /** The exact command that changes it, when something should change. */
  fix?: string;
}

/** What `porter doctor --json` prints. */
export interface DoctorReport {
  kernel: string;
  settings: {
    ip_local_port_range: [number, number] | null;
    ip_local_reserved_ports: [number, number][] | null;
    tcp_tw_reuse: number | null;
    tcp_timestamps: number | null;
    open_files: { soft: number | 'unlimited'; hard: number | 'unlimited' } | null;
    nr_open: number | null;
    file_max: number | null;
  };
  capacity: {
    /** Porter's range and source addresses as given. */
    porter: {
      range: [number, number];
      local_addresses: string[];
      /** Ports porter itself hands out to one destination. */
      explicit: number;
      /** More the kernel can pick for that destination once those are taken (kernel fallback). */
      kernel: number;
      per_destination: number;
      /** For `destinations` destinations, bounded by the soft open-file limit. */
      total: number;
    };
    /** The kernel alone, without porter. */
    kernel_alone: {
      /** connect() without bind: the kernel picks a port free for that destination. */
      per_destination: number;
      /** bind(address, 0) before connect (a chosen source address): ports for all destinations together. */
      per_source_address: number;
      total: number;
    };
    destinations: number;
  };
  findings: Finding[];
}

const size = (r: [number, number]): number => r[1] - r[0] + 1;

/** Ports of `range` in none of `excluded`. */
function outside(range: [number, number], excluded: readonly [number, number][]): number {
  let n = 0;
  for (let port = range[0]; port <= range[1]; port++) {
    if (!excluded.some(([a, b]) => port >= a && port <= b)) n++;
  }
  return n;
}
const finite = (n: number | 'unlimited' | undefined): number =>
  n === undefined || n === 'unlimited' ? Number.POSITIVE_INFINITY : n;

/** The report for `settings` (read from /proc) and `options`. */
export function diagnose(settings: HostSettings, options: DoctorOptions): DoctorReport {
  const ephemeral = settings.ipLocalPortRange ?? [32768, 60999];
  const reserved = settings.ipLocalReservedPorts ?? [];
  const system = options.range === 'system';
  const range: [number, number] = options.range === 'system' ? ephemeral : options.range;
  const locals = Math.max(1, options.local.length);
  const ephemeralFree = size(ephemeral) - overlap(ephemeral[0], ephemeral[1], reserved);

  // Porter hands out every port of its range (reserved ones skipped only with 'system'),
  // once per source address. After that the kernel may pick, for that destination, the
  // ephemeral ports porter's range does not already cover.
  const explicit = (size(range) - (system ? overlap(range[0], range[1], reserved) : 0)) * locals;
  const kernelExtra = options.fallback ? outside(ephemeral, [range, ...reserved]) * locals : 0;
  const perDestination = explicit + kernelExtra;
  const softFiles = finite(settings.openFiles?.soft);
  const total = Math.min(perDestination * options.destinations, softFiles);
  const kernelTotal = Math.min(ephemeralFree * options.destinations, softFiles);

  const findings: Finding[] = [];
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
  } else {
    const value = `soft ${files.soft}, hard ${files.hard}`;
    const wanted = perDestination * options.destinations;
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

  if (settings.ipLocalPortRange !== undefined) {
    const n = size(settings.ipLocalPortRange);
    const text = `${settings.ipLocalPortRange[0]}-${settings.ipLocalPortRange[1]} (${fmt(n)} ports)`;
    if (!system && overlap(range[0], range[1], [settings.ipLocalPortRange]) > 0) {
      findings.push({
        id: 'ip_local_port_range',
        status: 'info',
        value: text,
        message: `porter's range ${range[0]}-${range[1]} overlaps the kernel's ephemeral ports: a port the kernel gave another socket can collide with porter's choice (porter then retries on another port with --retries)`,
        fix:
          range[0] < settings.ipLocalPortRange[0]
            ? `porter hold ... --range ${range[0]}-${settings.ipLocalPortRange[0] - 1}`
            : `porter hold ... --range 1024-${settings.ipLocalPortRange[0] - 1}`,
      });
    } else {
      findings.push({
        id: 'ip_local_port_range',
        status: 'ok',
        value: text,
        message: 'the kernel picks its ports from here',
      });
    }
  }
  if (reserved.length > 0) {
    const inRange = overlap(range[0], range[1], reserved);
    const text = reserved.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
    findings.push(
      inRange > 0 && !system
        ? {
            id: 'ip_local_reserved_ports',
            status: 'info',
            value: text,
            message: `${fmt(inRange)} reserved ports lie in porter's range: porter skips them only with --range system`,
            fix: 'porter hold ... --range system',
          }
        : {
            id: 'ip_local_reserved_ports',
            status: 'ok',
            value: text,
            message: "the kernel never picks these; porter's range does not use them",
          },
    );
  }

  return {
    kernel: settings.kernel,
    settings: {
      ip_local_port_range: settings.ipLocalPortRange ?? null,
      ip_local_reserved_ports: settings.ipLocalReservedPorts ?? null,
      tcp_tw_reuse: settings.tcpTwReuse ?? null,
      tcp_timestamps: settings.tcpTimestamps ?? null,
      open_files: settings.openFiles ?? null,
      nr_open: settings.nrOpen ?? null,
      file_max: settings.fileMax ?? null,
    },
    capacity: {
      porter: {
        range,
        local_addresses: options.local,
        explicit,
        kernel: kernelExtra,
        per_destination: perDestination,
        total,
      },
      kernel_alone: { per_destination: ephemeralFree, per_source_address: ephemeralFree, total: kernelTotal },
      destinations: options.destinations,
    },
    findings,
  };
}

const fmt = (n: number): string => (Number.isFinite(n) ? n.toLocaleString('en-US') : 'unlimited');

/** The report for people. */
export function formatReport(report: DoctorReport, color: boolean): string {
  const s = report.settings;
  const c = report.capacity;
  const range = (r: [number, number] | null): string => (r ? `${r[0]}-${r[1]}` : 'unknown');
  const out: string[] = [];
  out.push(`porter doctor: Linux ${report.kernel}`, '');
  out.push(
    keyValues(
      [
        ['ip_local_port_range', range(s.ip_local_port_range)],
        [
          'ip_local_reserved_ports',
          s.ip_local_reserved_ports === null
            ? 'unknown'
            : s.ip_local_reserved_ports.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',') || '(none)',
        ],
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
      ],
      color,
    ),
  );
  const plural = (n: number, word: string): string => `${fmt(n)} ${word}${n === 1 ? '' : 's'}`;
  const sources = c.porter.local_addresses.length || 1;
  const times = (n: number): number => n * c.destinations;
  out.push(
    '',
    `Capacity: porter on ${range(c.porter.range)} from ${plural(sources, 'source address')}` +
      `${c.porter.local_addresses.length === 0 ? ' (the kernel picks it)' : ''}, ${plural(c.destinations, 'destination')}:`,
  );
  out.push(
    table(
      ['connections', 'per destination', `to ${plural(c.destinations, 'destination')}`],
      [
        ["porter: its range's ports, once per source address", c.porter.explicit, times(c.porter.explicit)],
        [
          'porter: then the kernel fallback (ephemeral ports outside the range)',
          c.porter.kernel,
          times(c.porter.kernel),
        ],
        ['porter in all, at most one per open file', c.porter.per_destination, c.porter.total],
        ['the kernel alone: connect() without bind()', c.kernel_alone.per_destination, c.kernel_alone.total],
        [
          'the kernel alone: bind(address, 0) before connect()',
          c.kernel_alone.per_source_address,
          Math.min(c.kernel_alone.per_source_address, finite(s.open_files?.soft)),
        ],
      ],
      color,
    ),
  );
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
  const report = diagnose(readHostSettings(), options);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatReport(report, wantsColor(process.stdout))}\n`);
  return report.findings.some((f) => f.status === 'warn') ? 1 : 0;
}
