/** The shapes of what a Porter takes and reports. (Types only: this module imports none of porter's.) */
import type { LookupFunction } from 'node:net';

/**
 * How a Porter chooses ports (see the package README, "Host safety"):
 * - `'hybrid'` (default): porter binds the ports of its range that lie outside the
 *   kernel's ephemeral range (`net.ipv4.ip_local_port_range`) itself, and lets the
 *   kernel pick those inside it at `connect()` (IP_BIND_ADDRESS_NO_PORT, narrowed to the
 *   range with IP_LOCAL_PORT_RANGE), so it never takes ephemeral ports from the rest of
 *   the host. Capacity per destination: the whole range.
 * - `'kernel'`: the kernel picks every port, within the part of the range inside its
 *   ephemeral range; for many processes sharing destinations, or to follow the kernel's
 *   TIME_WAIT rules everywhere.
 * - `'pool'`: porter binds every port of the range itself, as the Erlang original does.
 *   Ports it holds inside the ephemeral range are then unavailable to every other
 *   outgoing connection of the host: choose it only on a host that is porter's alone.
 *
 * Reserved ports (`net.ipv4.ip_local_reserved_ports`) are skipped in every mode.
 */
export type PortMode = 'hybrid' | 'pool' | 'kernel';

/**
 * Whether a Porter binds the ports `/etc/services` names for tcp (see the package README,
 * "Services that start later"):
 * - `'avoid'` (default): never; a service that binds its port without SO_REUSEADDR and
 *   starts after porter finds the port free, even while porter holds thousands of
 *   connections or just closed them (TIME_WAIT). It costs about 130 of the 31,744 ports
 *   below Linux's default ephemeral range (Debian's list); `capacity().servicePorts`
 *   says how many.
 * - `'use'`: bind them like any other port of the range.
 */
export type ServicePortsChoice = 'avoid' | 'use';

/** How a Porter hands out ports. Every field is optional. */
export interface PorterOptions {
  /**
   * Inclusive range of local ports, default [1024, 65535]. Never read from the system
   * unless you pass 'system' (then net.ipv4.ip_local_port_range is read once). In every
   * mode but 'pool', the ports of the range inside the kernel's ephemeral range are left
   * to the kernel to pick, so a range of your own is as safe for the host as the default.
   */
  portRange?: readonly [number, number] | 'system';
  /** Which ports porter binds itself and which the kernel picks (default 'hybrid'). */
  mode?: PortMode;
  /** Whether porter binds the ports /etc/services names for tcp (default 'avoid'). */
  servicePorts?: ServicePortsChoice;
  /** How long a port rests after this side closed first, in ms (default 30 000). */
  agingMs?: number;
  /**
   * Extra ports to try on EADDRINUSE / EADDRNOTAVAIL (collisions with sockets porter does
   * not know of, such as another process's). Default: 8 in mode 'hybrid', 0 in 'pool'
   * (as in the Erlang original) and 'kernel' (the kernel's own choice never collides).
   */
  retry?: { attempts?: number };
  /**
   * When the range has no port left for a destination, let the kernel pick one anywhere
   * in its ephemeral range and track it (default true). It takes nothing from the host:
   * the kernel shares such ports between destinations.
   */
  kernelFallback?: boolean;
  /**
   * Local source addresses to use for every destination of their family, in order: when
   * the first one's pool for a destination is empty, the next one's is used, so one
   * destination can take more than one range of connections. Default: the unspecified
   * address of the destination's family (the kernel picks the source address).
   */
  localAddresses?: readonly string[];
  /**
   * Socket options set on every socket this Porter connects, before bind and connect
   * (a connect's own `socketOptions` override them field by field). See
   * {@link SocketOptions}.
   */
  socketOptions?: SocketOptions;
}

/** A normalised configuration. */
export interface ResolvedOptions {
  portRange: [number, number];
  mode: PortMode;
  servicePorts: ServicePortsChoice;
  agingMs: number;
  retry: { attempts: number };
  kernelFallback: boolean;
  localAddresses: string[];
  /** The fields given, checked (`keepAlive: true` as `{}`); `{}` when none. */
  socketOptions: SocketOptions;
}

/**
 * TCP keep-alive timings (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`, Linux 2.4). A
 * field left out keeps the kernel's default (`net.ipv4.tcp_keepalive_time`, `_intvl`,
 * `_probes`: 7200 s, 75 s, 9). The kernel counts time in whole seconds.
 */
export interface KeepAliveOptions {
  /** Idleness before the first probe, in ms: whole seconds from 1 000 to 32 767 000. */
  idleMs?: number;
  /** Between unanswered probes, in ms: whole seconds from 1 000 to 32 767 000. */
  intervalMs?: number;
  /** Unanswered probes before the connection fails with ETIMEDOUT: 1 to 127. */
  count?: number;
}

/**
 * Socket options Node cannot set, which porter sets on every socket it connects before
 * `bind()` and `connect()` (the ports porter binds and those the kernel picks alike). On a
 * Porter they apply to all its connects; on a connect they override the Porter's field by
 * field. Each field takes the value a new socket has (`false`, `0`, `''`) to undo the
 * Porter's setting for one connect. A value the kernel refuses fails the connect with the
 * system's code, `syscall: 'setsockopt'` and `option` (the option's name); see the
 * package README for each option's kernel version and privileges.
 */
export interface SocketOptions {
  /**
   * `TCP_USER_TIMEOUT` (Linux 2.6.37): how long sent data may stay unacknowledged before
   * the connection fails with ETIMEDOUT, in ms (0 to 2^31 - 1; 0 is the kernel's default,
   * about 15 minutes of retransmissions).
   */
  userTimeoutMs?: number;
  /**
   * `SO_KEEPALIVE` with `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`: `true` (or `{}`)
   * for keep-alive with the kernel's timings, an object to set them, `false` for none.
   * When given, net's `keepAlive` / `keepAliveInitialDelay` options are not applied.
   */
  keepAlive?: KeepAliveOptions | boolean;
  /** `SO_MARK` (Linux 2.6.25): the packets' mark (0 to 2^32 - 1), for policy routing; needs CAP_NET_ADMIN. */
  mark?: number;
  /** `SO_BINDTODEVICE`: the network device packets leave by, at most 15 bytes ('' for none). */
  bindToDevice?: string;
  /**
   * `IP_TOS` (IPv4) or `IPV6_TCLASS` (IPv6): the DS field, 0 to 255 with the two ECN bits
   * zero (the kernel manages those on TCP sockets): DSCP << 2, so 0xb8 for EF.
   */
  tos?: number;
  /** `IP_FREEBIND` / `IPV6_FREEBIND` (Linux 4.15 for IPv6): bind to an address not (yet) on the host. */
  freebind?: boolean;
  /** `IP_TRANSPARENT` / `IPV6_TRANSPARENT`: bind to and send from any address (transparent proxies); needs CAP_NET_ADMIN. */
  transparent?: boolean;
  /**
   * `SO_LINGER` with a zero timeout: when this side closes the socket (`destroy()`), the
   * connection is reset instead of ended, so no TIME_WAIT is left and the port is free at
   * once instead of aging. Unsent data is discarded.
   */
  lingerZeroOnClose?: boolean;
  /**
   * `TCP_FASTOPEN_CONNECT` (Linux 4.11): TCP Fast Open. Once the server gave a cookie, a
   * connect resolves before the handshake and the SYN carries the first data written; for
   * protocols where the client speaks first (HTTP, TLS).
   */
  fastOpen?: boolean;
  /** `TCP_CONGESTION` (Linux 2.6.13): the congestion control algorithm ('reno', 'cubic', 'bbr', ...; '' for the default). */
  congestion?: string;
}

/** Options of {@link Porter.connect}: those of `net.connect` that make sense here. */
export interface ConnectOptions {
  /** Host name or IP literal (default 'localhost'). Names resolve through dns.lookup. */
  host?: string;
  port: number | string;
  /** A source address (IP literal) for this connect, instead of the Porter's own. */
  localAddress?: string;
  /** Address family for name resolution: 0 (any), 4 or 6. */
  family?: number;
  /** A custom resolver with the signature of dns.lookup. */
  lookup?: LookupFunction;
  /** dns.lookup hints. */
  hints?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  allowHalfOpen?: boolean;
  /** Milliseconds for the whole connect, resolution included; rejects with ETIMEDOUT. */
  timeout?: number;
  /**
   * Aborts the connect (rejects with an AbortError, code ABORT_ERR); an abort after the
   * connect destroys the socket with that error, as net's.
   */
  signal?: AbortSignal;
  /**
   * Try every address a host name resolves to, the families alternating (happy
   * eyeballs), as net.connect does. Default: `net.getDefaultAutoSelectFamily()`.
   */
  autoSelectFamily?: boolean;
  /** Milliseconds for each address but the last. Default: `net.getDefaultAutoSelectFamilyAttemptTimeout()`. */
  autoSelectFamilyAttemptTimeout?: number;
  /** Socket options for this connect, over the Porter's field by field. */
  socketOptions?: SocketOptions;
}

/** Options of {@link Porter.allocate}. */
export interface AllocateOptions {
  /** The remote address (an IP literal). */
  address: string;
  /** The remote port. */
  port: number;
  /** The local address the port is for (default: the Porter's, or unspecified). */
  localAddress?: string;
}

/** One pool in a snapshot. */
export interface PoolSnapshot {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  inUse: number[];
  aging: { port: number; remainingMs: number }[];
  free: number;
}

/** One pool's counts in {@link Porter.poolCounts}. */
export interface PoolCounts {
  localAddress: string;
  remoteAddress: string;
  remotePort: number;
  inUse: number;
  aging: number;
  free: number;
}

/** The busiest pools and the others summed, from {@link Porter.poolSummary}. */
export interface PoolSummary {
  /** At most the number asked for: most ports in use first, then most aging. */
  busiest: PoolCounts[];
  /** Every other pool, summed (`pools`: how many). */
  others: { pools: number; inUse: number; aging: number; free: number };
}

/** Counters and the connect-duration histogram, read from the core. */
export interface PorterStats {
  allocations: number;
  releases: { aging: number; immediate: number };
  retries: Record<string, number>;
  exhausted: number;
  /** Connections whose port the kernel picked outside the range (the fallback). */
  kernelFallbacks: number;
  /** Connections whose port the kernel picked inside the range (its window; see `mode`). */
  kernelPicks: number;
  connectErrors: Record<string, number>;
  connectDuration: { bounds: number[]; counts: number[]; count: number; sumSeconds: number };
  /** Pools now: one per destination and source address with a port in use or aging, or held. */
  pools: number;
  /** Pools dropped so far because they held nothing and nobody held them. */
  poolsRetired: number;
  /**
   * The process-wide reserve of ready sockets (the same for every Porter): its capacity
   * per family, the sockets ready now, and how many connects took one (`taken`) or made
   * their own because none was ready or the reserve is off (`madeInline`).
   */
  socketReserve: { capacity: number; ready: { ipv4: number; ipv6: number }; taken: number; madeInline: number };
}

/** How a Porter's range is split between porter and the kernel, from {@link Porter.capacity}. */
export interface Capacity {
  mode: PortMode;
  /** Ports porter binds itself, per destination and source address. */
  explicit: number;
  /** Ports the kernel may pick in its window of the range, per destination and source address. */
  kernel: number;
  /** `explicit + kernel`: connections per destination and source address. */
  perDestination: number;
  /** The ports porter binds itself, as inclusive `[first, last]` intervals. */
  explicitPorts: [number, number][];
  /** The part of the range the kernel picks in, or null (mode 'pool', or no overlap). */
  kernelWindow: [number, number] | null;
  /** Whether sockets carry IP_LOCAL_PORT_RANGE to keep the kernel inside its window. */
  kernelWindowNarrowed: boolean;
  /**
   * The kernel's ephemeral range in force. A Porter follows the host's settings: a change
   * of `ip_local_port_range` or `ip_local_reserved_ports` shows here, and applies to new
   * binds, within about a second.
   */
  ephemeral: [number, number];
  /**
   * Ports porter would bind itself but leaves to the services /etc/services names
   * (option `servicePorts: 'avoid'`, the default); 0 with `'use'`.
   */
  servicePorts: number;
}

/** The host's port settings, read now (see {@link hostPorts}). */
export interface HostPorts {
  /** `net.ipv4.ip_local_port_range`: where the kernel picks ports for everyone's connect(). */
  ephemeral: [number, number];
  /** `net.ipv4.ip_local_reserved_ports`, as inclusive `[first, last]` intervals. */
  reserved: [number, number][];
  /** False when /proc could not be read and Linux's defaults (32768-60999) stand in. */
  readFromSystem: boolean;
  /** The kernel options porter uses to let the kernel pick ports. */
  features: {
    /** IP_BIND_ADDRESS_NO_PORT (Linux 4.2). */
    bindAddressNoPort: boolean;
    /** IP_LOCAL_PORT_RANGE (Linux 6.3). */
    localPortRange: boolean;
  };
}
