/**
 * The default Porter: one per process, shared by every worker thread (they all see the
 * one native registry), behind the module-level connect / allocate / snapshot.
 */

import type { Socket } from 'node:net';
import * as native from '@porter/native';
import type { CreateConnectionArg } from './create-connection.js';
import { callNative } from './errors.js';
import type { Lease } from './lease.js';
import { optionsFromNative, type PorterOptions, resolveOptions, toNative } from './options.js';
import { Porter } from './porter.js';
import type { AllocateOptions, ConnectOptions, PoolSnapshot } from './types.js';

let instance: Porter | undefined;

/**
 * Configures the process-wide default instance. Call it before the first use, from any
 * thread; calling it again (from any thread) with the same options is harmless, with
 * other options throws ERR_PORTER_DEFAULT_CONFIGURED.
 */
export function configureDefault(options: PorterOptions): Porter {
  const resolved = resolveOptions(options);
  const registry = callNative(() => native.Registry.shared(toNative(resolved)));
  instance = new Porter(options, registry);
  return instance;
}

/**
 * The process-wide default instance. Closing it closes this thread's instance only: the
 * next call makes a new one on the same shared pools.
 */
export function defaultPorter(): Porter {
  if (instance === undefined || instance.closed) {
    // Another thread may have configured the shared registry: take its options.
    const registry = callNative(() => native.Registry.shared());
    instance = new Porter(optionsFromNative(registry.options()), registry);
  }
  return instance;
}

/** {@link Porter.connect} on the default instance. */
export function connect(options: ConnectOptions): Promise<Socket> {
  return defaultPorter().connect(options);
}

/** {@link Porter.allocate} on the default instance. */
export function allocate(options: AllocateOptions): Lease {
  return defaultPorter().allocate(options);
}

/** {@link Porter.snapshot} on the default instance. */
export function snapshot(): PoolSnapshot[] {
  return defaultPorter().snapshot();
}

/** {@link Porter.createConnection} on the default instance: net.createConnection's contract. */
export function createConnection(options: CreateConnectionArg, connectListener?: () => void): Socket;
export function createConnection(port: number | string, host?: string, connectListener?: () => void): Socket;
export function createConnection(port: number | string, connectListener?: () => void): Socket;
export function createConnection(...args: unknown[]): Socket {
  const porter = defaultPorter();
  return Reflect.apply(porter.createConnection, porter, args) as Socket;
}
