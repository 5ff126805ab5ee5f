/**
 * The shapes of `porter doctor`: its options, its findings, and the report `--json`
 * prints (snake_case keys, stable: programs read them).
 */
import type { PortMode } from '@porter/core';

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
  /** Destinations shown in the report for people, busiest first (default 10; `--json` has all). */
  top: number;
  json: boolean;
}

/** One finding: a setting, what it is, and what to do. */
export interface Finding {
  /** Stable id: `tcp_tw_reuse`, `tcp_timestamps`, `open_files`, `mode`, `listeners`, ... */
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

/** The TCP states that hold a 4-tuple, as `destinations[].states` counts them. */
export type TcpStateName =
  | 'established'
  | 'syn_sent'
  | 'syn_recv'
  | 'fin_wait1'
  | 'fin_wait2'
  | 'time_wait'
  | 'close_wait'
  | 'last_ack'
  | 'closing';

/** Where the host's sockets were read from, and what they add up to. */
export interface SocketsSummary {
  /** `sock_diag` (netlink), `proc` (/proc/net/tcp{,6}), or null when neither could be read. */
  source: 'sock_diag' | 'proc' | null;
  /** Why they could not be read, or null. */
  reason: string | null;
  /** Outgoing sockets in a state that holds a 4-tuple, every destination together. */
  connections: number | null;
  /** Destinations of those. */
  destinations: number | null;
  /** Connections accepted by (or queued at) this host's listeners: not destinations. */
  incoming: number | null;
  /** Ports the kernel can pick per destination: ip_local_port_range less reserved ports. */
  kernel_ports: number;
  /** Ports porter binds itself per destination and source address (null: porter cannot run). */
  porter_ports: number | null;
}

/** The host's connections to one destination, whoever opened them. */
export interface DestinationReport {
  /** `address:port`, `[address]:port` for IPv6. */
  destination: string;
  /** Sockets towards it in a state that holds a 4-tuple (TIME_WAIT included). */
  connections: number;
  states: Record<TcpStateName, number>;
  /** The source addresses those sockets are bound to. */
  local_addresses: string[];
  /**
   * Ports a new connection to it can still have, from its busiest source address: in the
   * kernel's range (`kernel_ports` less the ports held towards it and the listeners'), and
   * among the ports porter binds itself (null when porter cannot run with the options).
   */
  ports_left: { kernel: number; porter: number | null };
}

/** A port something listens on. */
export interface ListeningPort {
  port: number;
  /** The addresses it listens on ('0.0.0.0' and '::' for every address). */
  addresses: string[];
  /** Its name in /etc/services, or null. */
  service: string | null;
  /** Connections accepted by it or waiting in its accept queue. */
  connections: number;
  /** Whether the port lies in porter's range. */
  in_porter_range: boolean;
  /** Whether porter binds it itself (its range less the kernel's ephemeral range and reserved ports, in mode hybrid). */
  porter_binds: boolean;
  /** Whether ip_local_reserved_ports holds it. */
  reserved: boolean;
}

/** Listening services, and the ip_local_reserved_ports line that protects those at risk. */
export interface ListenersReport {
  /** Every listening TCP port of the host, sorted. */
  ports: ListeningPort[];
  /** Listening ports porter binds itself, not reserved: a service restarting there can find porter holding its port. */
  unprotected: number[];
  /** ip_local_reserved_ports with the unprotected ports added, as ranges; null when nothing is to add. */
  reserved_ports: string | null;
  /** The command that sets it, or null. */
  command: string | null;
}

/** Whether this host rewrites the source of outgoing connections (SNAT, masquerade). */
export interface NatReport {
  /** True: seen; false: looked and not seen; null: nothing could be looked at. */
  outgoing: boolean | null;
  /** What showed it: conntrack entries with a rewritten source, nft or iptables rules. */
  evidence: string[];
  /** What was looked at. */
  checked: string[];
  /** What could not be looked at, and why; null when everything was. */
  reason: string | null;
}

/** Connection tracking (nf_conntrack) of this network namespace. */
export interface ConntrackReport {
  /** net.netfilter.nf_conntrack_max: entries the table can hold (shared by the host). */
  max: number | null;
  /** net.netfilter.nf_conntrack_count: entries now (this network namespace's). */
  count: number | null;
  /** net.netfilter.nf_conntrack_buckets: the hash table's size. */
  buckets: number | null;
  /** count / max. */
  usage: number | null;
  /**
   * Whether conntrack tracks this namespace's connections: true when it holds entries,
   * false when it holds none though the host has connections (no rule needs it here),
   * null when that cannot be told.
   */
  tracking: boolean | null;
  /** Why `max`, `count` and `buckets` are null, or null. */
  reason: string | null;
  nat: NatReport;
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
  /** Where the host's sockets come from, and their totals. */
  sockets: SocketsSummary;
  /** The host's outgoing connections per destination, busiest first; null when they cannot be read. */
  destinations: DestinationReport[] | null;
  /** Listening services; null when the sockets cannot be read. */
  listeners: ListenersReport | null;
  conntrack: ConntrackReport;
  findings: Finding[];
}
