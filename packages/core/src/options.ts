/** The options of a Porter, validated and normalised for the native allocator. */
import * as native from '@porter/native';
import { callNative, invalidArgType, invalidArgValue } from './errors.js';
import {
  validateBoolean,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
} from './validate.js';

/** How a Porter hands out ports. Every field is optional. */
export interface PorterOptions {
  /**
   * Inclusive range of local ports, default [1024, 65535]. Never read from the system
   * unless you pass 'system' (then net.ipv4.ip_local_port_range is read once).
   */
  portRange?: readonly [number, number] | 'system';
  /** How long a port rests after this side closed first, in ms (default 30 000). */
  agingMs?: number;
  /** Extra ports to try on EADDRINUSE / EADDRNOTAVAIL (default { attempts: 0 }). */
  retry?: { attempts?: number };
  /** After that, let the kernel pick the port and track it (default true). */
  kernelFallback?: boolean;
  /**
   * Local source addresses to use for every destination of their family, in order: when
   * the first one's pool for a destination is empty, the next one's is used, so one
   * destination can take more than one range of connections. Default: the unspecified
   * address of the destination's family (the kernel picks the source address).
   */
  localAddresses?: readonly string[];
}

/** A normalised configuration. */
export interface ResolvedOptions {
  portRange: [number, number];
  agingMs: number;
  retry: { attempts: number };
  kernelFallback: boolean;
  localAddresses: string[];
}

export function resolveOptions(options: PorterOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  validateObject(options, 'options');
  let portRange: [number, number] = [1024, 65535];
  if (options.portRange === 'system') {
    const [first, last] = callNative(() => native.systemPortRange());
    portRange = [first as number, last as number];
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
  const agingMs =
    options.agingMs === undefined ? 30_000 : validateNumber(options.agingMs, 'options.agingMs', 0, 2 ** 31 - 1);
  let attempts = 0;
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
  return { portRange, agingMs, retry: { attempts }, kernelFallback, localAddresses };
}

export function toNative(o: ResolvedOptions): native.AllocatorOptions {
  return {
    rangeFirst: o.portRange[0],
    rangeLast: o.portRange[1],
    agingMs: o.agingMs,
    retryAttempts: o.retry.attempts,
    kernelFallback: o.kernelFallback,
    localAddresses: o.localAddresses,
  };
}

/** The options of an existing native allocator (the process default, in any thread). */
export function fromNative(o: native.AllocatorOptions): PorterOptions {
  return {
    portRange: [o.rangeFirst, o.rangeLast],
    agingMs: o.agingMs,
    retry: { attempts: o.retryAttempts },
    kernelFallback: o.kernelFallback,
    localAddresses: o.localAddresses ?? [],
  };
}
