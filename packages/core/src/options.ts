/** The options of a Porter, validated and normalised for the native allocator. */
import * as native from '@porter/native';
import { callNative, invalidArgType, invalidArgValue } from './errors.js';
import { fromNativeSocketOptions, toNativeSocketOptions, validateSocketOptions } from './sockopts.js';
import type { SocketOptions } from './types.js';
import {
  validateBoolean,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
} from './validate.js';

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

export function resolveOptions(options: PorterOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  validateObject(options, 'options');
  let portRange: [number, number] = [1024, 65535];
  if (options.portRange === 'system') {
    const { ephemeral } = callNative(() => native.hostPorts());
    portRange = [ephemeral.first, ephemeral.last];
  } else if (options.portRange !== undefined) {
    const r = options.portRange as unknown;
    if (!Array.isArray(r) || r.length !== 2) {
      throw invalidArgType('options.portRange', "an array [first, last] or 'system'", r);
    }
    const first = validatePort(r[0], 'options.portRange[0]');
    const last = validatePort(r[1], 'options.portRange[1]');
    if (first > last) throw invalidArgValue('options.portRange', r, 'must have first <= last');
    portRange = [first, last];
  }
  let mode: PortMode = 'hybrid';
  if (options.mode !== undefined) {
    if (options.mode !== 'hybrid' && options.mode !== 'pool' && options.mode !== 'kernel') {
      throw invalidArgValue('options.mode', options.mode, "must be one of: 'hybrid', 'pool', 'kernel'");
    }
    mode = options.mode;
  }
  let servicePorts: ServicePortsChoice = 'avoid';
  if (options.servicePorts !== undefined) {
    if (options.servicePorts !== 'avoid' && options.servicePorts !== 'use') {
      throw invalidArgValue('options.servicePorts', options.servicePorts, "must be one of: 'avoid', 'use'");
    }
    servicePorts = options.servicePorts;
  }
  const agingMs =
    options.agingMs === undefined ? 30_000 : validateNumber(options.agingMs, 'options.agingMs', 0, 2 ** 31 - 1);
  let attempts: number | undefined;
  if (options.retry !== undefined) {
    validateObject(options.retry, 'options.retry');
    if (options.retry.attempts !== undefined) {
      attempts = validateInteger(options.retry.attempts, 'options.retry.attempts', 0, 65535);
    }
  }
  const kernelFallback =
    options.kernelFallback === undefined ? true : validateBoolean(options.kernelFallback, 'options.kernelFallback');
  let localAddresses: string[] = [];
  if (options.localAddresses !== undefined) {
    if (!Array.isArray(options.localAddresses)) {
      throw invalidArgType('options.localAddresses', 'an array of IP addresses', options.localAddresses);
    }
    localAddresses = options.localAddresses.map((a, i) => validateIp(a, `options.localAddresses[${i}]`));
  }
  const socketOptions =
    options.socketOptions === undefined ? {} : validateSocketOptions(options.socketOptions, 'options.socketOptions');
  attempts ??= callNative(() => native.defaultRetries(mode));
  return {
    portRange,
    mode,
    servicePorts,
    agingMs,
    retry: { attempts },
    kernelFallback,
    localAddresses,
    socketOptions,
  };
}

export function toNative(o: ResolvedOptions): native.RegistryOptions {
  return {
    rangeFirst: o.portRange[0],
    rangeLast: o.portRange[1],
    mode: o.mode,
    servicePorts: o.servicePorts,
    agingMs: o.agingMs,
    retryAttempts: o.retry.attempts,
    kernelFallback: o.kernelFallback,
    localAddresses: o.localAddresses,
    socketOptions: toNativeSocketOptions(o.socketOptions),
  };
}

/** The options of an existing native registry (the process default, in any thread). */
export function optionsFromNative(o: native.RegistryOptions): PorterOptions {
  return {
    portRange: [o.rangeFirst, o.rangeLast],
    mode: o.mode as PortMode,
    servicePorts: (o.servicePorts ?? 'avoid') as ServicePortsChoice,
    agingMs: o.agingMs,
    retry: { attempts: o.retryAttempts },
    kernelFallback: o.kernelFallback,
    localAddresses: o.localAddresses ?? [],
    socketOptions: fromNativeSocketOptions(o.socketOptions),
  };
}
