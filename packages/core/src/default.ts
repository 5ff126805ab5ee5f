/**
 * The default Porter: one per process, shared by every worker thread (they all see the
 * one native registry), behind the module-level connect / allocate / snapshot.
 */

import type { Socket } from 'node:net';
import * as native from '@porter/native';
import { callNative } from './errors.js';
import type { Lease } from './lease.js';
import { fromNative, type PorterOptions, resolveOptions, toNative } from './options.js';
import { type AllocateOptions, type ConnectOptions, type PoolSnapshot, Porter } from './porter.js';

let instance: Porter | undefined;

/**
 * Configures the process-wide default instance. Call it before the first use, from any
 * thread; calling it again (from any thread) with the same options is harmless, with
 * other options throws ERR_PORTER_DEFAULT_CONFIGURED.
 */
export function configureDefault(options: PorterOptions): Porter {
  const resolved = resolveOptions(options);
  const allocator = callNative(() => native.Allocator.shared(toNative(resolved)));
  instance = new Porter(options, allocator);
  return instance;
}

/** The process-wide default instance. */
export function defaultPorter(): Porter {
  if (instance === undefined) {
    // Another thread may have configured the shared allocator: take its options.
    const allocator = callNative(() => native.Allocator.shared());
    instance = new Porter(fromNative(allocator.options()), allocator);
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
