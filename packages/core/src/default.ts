/**
 * The default Porter: one per process, shared by every worker thread (they all see the
 * one native registry), behind the module-level connect / allocate / snapshot; and the
 * `porter` option every package takes, which names a Porter or leaves it to the default.
 */

import type { Socket } from 'node:net';
import * as native from '@porter/native';
import type { CreateConnectionArg } from './create-connection.js';
import { callNative, invalidArgType } from './errors.js';
import type { Lease } from './lease.js';
import { optionsFromNative, resolveOptions, toNative } from './options.js';
import { Porter } from './porter.js';
import type { AllocateOptions, ConnectOptions, PoolSnapshot, PorterOptions } from './types.js';

let instance: Porter | undefined;

/**
 * Configures the default Porter, the process's. Call it before the first use, from any
 * thread; calling it again (from any thread) with the same options is harmless, with
 * other options throws ERR_PORTER_DEFAULT_CONFIGURED.
 */
export function configureDefault(options: PorterOptions): Porter {
  const resolved = resolveOptions(options);
  const registry = callNative(() => native.Registry.defaultRegistry(toNative(resolved)));
  instance = new Porter(options, registry);
  return instance;
}

/**
 * The default Porter: one per thread, all on the one registry of the process, which every
 * worker thread shares. Closing it closes this thread's Porter only: the next call makes
 * a new one on the same shared pools.
 */
export function defaultPorter(): Porter {
  if (instance === undefined || instance.closed) {
    // Another thread may have configured the shared registry: take its options.
    const registry = callNative(() => native.Registry.defaultRegistry());
    instance = new Porter(optionsFromNative(registry.options()), registry);
  }
  return instance;
}

/** What porter's packages call on a Porter given to them. */
const PORTER_METHODS = ['connect', 'createConnection', 'snapshot', 'poolSummary', 'stats', 'capacity'] as const;

/**
 * The `porter` option of every package (Agents, @porter/tls, the connector, metrics): a
 * Porter, or the default one when not given (undefined). Anything else, null included,
 * throws ERR_INVALID_ARG_TYPE. A Porter is recognised by its methods, so that the
 * CommonJS and the ESM copy of this package, loaded side by side, take each other's.
 */
export function validatePorter(value: unknown, name = 'options.porter'): Porter {
  if (value === undefined) return defaultPorter();
  if (
    value === null ||
    typeof value !== 'object' ||
    !PORTER_METHODS.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
  ) {
    throw invalidArgType(name, 'an instance of Porter', value);
  }
  return value as Porter;
}

/** {@link Porter.connect} on the default Porter. */
export function connect(options: ConnectOptions): Promise<Socket> {
  return defaultPorter().connect(options);
}

/** {@link Porter.allocate} on the default Porter. */
export function allocate(options: AllocateOptions): Lease {
  return defaultPorter().allocate(options);
}

/** {@link Porter.snapshot} on the default Porter. */
export function snapshot(): PoolSnapshot[] {
  return defaultPorter().snapshot();
}

/** {@link Porter.createConnection} on the default Porter: net.createConnection's contract. */
export function createConnection(options: CreateConnectionArg, connectListener?: () => void): Socket;
export function createConnection(port: number | string, host?: string, connectListener?: () => void): Socket;
export function createConnection(port: number | string, connectListener?: () => void): Socket;
export function createConnection(...args: unknown[]): Socket {
  const porter = defaultPorter();
  return Reflect.apply(porter.createConnection, porter, args) as Socket;
}
