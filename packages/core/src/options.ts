/** The options of a Porter: validated and normalised, and as the native registry takes them. */
import * as native from '@porter/native';
import { callNative, invalidArgType, invalidArgValue } from './errors.js';
import { fromNativeSocketOptions, toNativeSocketOptions, validateSocketOptions } from './sockopts.js';
import type { PorterOptions, PortMode, ResolvedOptions, ServicePortsChoice } from './types.js';
import {
  validateBoolean,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
} from './validate.js';

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
