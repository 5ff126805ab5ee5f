/**
 * The doctor's report for people: the settings, porter's capacity, the busiest
 * destinations of the host's connections (`top` of them), the listening services in
 * porter's range, connection tracking and NAT, then the findings with their fixes.
 */
import { keyValues, table } from '../render.js';
import { NAT_PORTS } from './conntrack-report.js';
import { finite, fmt, plural, size, span } from './ports.js';
import type { DoctorReport } from './report.js';

function settingsPart(report: DoctorReport, color: boolean): string {
  const s = report.settings;
  return keyValues(
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
  );
}

function capacityPart(report: DoctorReport, color: boolean): string[] {
  const c = report.capacity;
  const p = c.porter;
  const times = (n: number): number => n * c.destinations;
  const soft = finite(report.settings.open_files?.soft);
  const out: string[] = [];
  const rows: (string | number)[][] = [];
  if (p !== null) {
    const sources = p.local_addresses.length || 1;
    out.push(
      `Capacity: porter in mode ${p.mode} on ${span(p.range)} from ${plural(sources, 'source address')}` +
        `${p.local_addresses.length === 0 ? ' (the kernel picks it)' : ''}, ${plural(c.destinations, 'destination')}:`,
    );
    const explicitText = p.explicit_ports.length === 0 ? 'none' : p.explicit_ports.map(span).join(', ');
    const notNarrowed =
      p.kernel_window !== null &&
      !p.kernel_window_narrowed &&
      size(p.kernel_window) < size(report.settings.ip_local_port_range);
    rows.push(
      [`porter binds them itself (${explicitText})`, p.explicit, times(p.explicit)],
      [
        `the kernel picks them in the range (${p.kernel_window === null ? 'none' : span(p.kernel_window)}${notNarrowed ? ', not narrowed: the kernel picks in all its range' : ''})`,
        p.kernel,
        times(p.kernel),
      ],
      ['then the kernel fallback (ephemeral ports outside the range)', p.fallback, times(p.fallback)],
      ['porter in all, at most one per open file', p.per_destination, p.total],
    );
  } else {
    out.push(
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
  return out;
}

function connectionsPart(report: DoctorReport, top: number, color: boolean): string[] {
  const s = report.sockets;
  const list = report.destinations;
  if (list === null) return [`Connections of this host: not readable (${s.reason}).`];
  const head = `Connections of this host, every process's (${s.source === 'sock_diag' ? 'netlink sock_diag' : '/proc/net/tcp'}): ${plural(s.connections ?? 0, 'outgoing socket')} to ${plural(list.length, 'destination')}, ${fmt(s.incoming ?? 0)} incoming`;
  if (list.length === 0) return [`${head}.`];
  const shown = list.slice(0, top);
  const rows = shown.map((d) => {
    const other = d.connections - d.states.established - d.states.time_wait;
    return [
      d.destination,
      d.connections,
      d.states.established,
      d.states.time_wait,
      other,
      d.ports_left.kernel,
      d.ports_left.porter ?? 'n/a',
    ];
  });
  const out = [
    `${head}; ports a new connection can still have, from the busiest source address:`,
    table(
      [
        'destination',
        'sockets',
        'established',
        'time_wait',
        'other states',
        `kernel's range (of ${fmt(s.kernel_ports)})`,
        `porter's own (of ${s.porter_ports === null ? 'n/a' : fmt(s.porter_ports)})`,
      ],
      rows,
      color,
    ),
  ];
  if (list.length > shown.length) {
    out.push(
      `(the ${fmt(shown.length)} busiest of ${fmt(list.length)} destinations: --top ${list.length} shows them all, --json lists every one)`,
    );
  }
  return out;
}

function listenersPart(report: DoctorReport, color: boolean): string[] {
  const l = report.listeners;
  if (l === null) return [];
  const inRange = l.ports.filter((p) => p.in_porter_range);
  const range = report.capacity.porter?.range;
  const where = range === undefined ? "porter's range" : `porter's range ${span(range)}`;
  if (inRange.length === 0)
    return [`Listening in ${where}: nothing (${plural(l.ports.length, 'listening port')} in all).`];
  const out = [
    `Listening in ${where} (${plural(l.ports.length, 'listening port')} in all):`,
    table(
      ['port', 'service', 'addresses', 'connections', 'who may take it'],
      inRange.map((p) => [
        String(p.port),
        p.service ?? '',
        p.addresses.join(', '),
        p.connections,
        p.reserved ? 'nobody (reserved)' : p.porter_binds ? 'PORTER (not reserved)' : 'any connect() (ephemeral)',
      ]),
      color,
    ),
  ];
  if (l.command !== null) out.push(`Keep porter off them: ${l.command}`);
  return out;
}

function conntrackPart(report: DoctorReport, color: boolean): string[] {
  const c = report.conntrack;
  const n = (v: number | null): string => (v === null ? 'unknown' : fmt(v));
  const nat = c.nat.outgoing === null ? 'unknown' : c.nat.outgoing ? 'yes' : 'not seen';
  return [
    `Connection tracking${c.reason === null ? '' : ` (${c.reason})`}:`,
    keyValues(
      [
        ['nf_conntrack_max (whole host)', n(c.max)],
        ['nf_conntrack_count (here)', `${n(c.count)}${c.usage === null ? '' : ` (${(c.usage * 100).toFixed(1)} %)`}`],
        ['nf_conntrack_buckets', n(c.buckets)],
        ['tracks connections here', c.tracking === null ? 'unknown' : c.tracking ? 'yes' : 'no'],
        ['source NAT of outgoing connections', nat],
      ],
      color,
    ),
    `A fleet behind a NAT gateway shares ${fmt(NAT_PORTS)} ports per public address per destination, whatever porter does: porter's ports are per host, and the gateway picks the port the destination sees.`,
  ];
}

function findingsPart(report: DoctorReport): string[] {
  const out = ['Findings:'];
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
  return out;
}

/** The report for people; `top`: the destinations shown, busiest first. */
export function formatReport(report: DoctorReport, color: boolean, top = 10): string {
  return [
    `porter doctor: Linux ${report.kernel}`,
    '',
    settingsPart(report, color),
    '',
    ...capacityPart(report, color),
    '',
    ...connectionsPart(report, top, color),
    '',
    ...listenersPart(report, color),
    ...(report.listeners === null ? [] : ['']),
    ...conntrackPart(report, color),
    '',
    ...findingsPart(report),
  ].join('\n');
}
