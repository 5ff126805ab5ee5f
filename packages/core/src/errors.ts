/**
 * Errors porter raises, in Node's conventions: a stable `code`, and for system errors
 * the shape of Node's own (`errno` negative, `syscall`, `address`, `port`,
 * `localAddress`, `localPort`). Also the one place that turns errors coming from the
 * native binding into these.
 */
import { inspect } from 'node:util';
import type { NativeError } from '@porter/native';

/** Every code porter raises itself. */
export const ErrorCodes = {
  /** No port is free for the destination and no fallback is allowed, or it failed too. */
  EXHAUSTED: 'ERR_PORTER_EXHAUSTED',
  /** The default instance was configured twice with different options. */
  DEFAULT_CONFIGURED: 'ERR_PORTER_DEFAULT_CONFIGURED',
  /**
   * The mode cannot keep its promise on this host: mode 'kernel' with a range that has no
   * port in the kernel's ephemeral range, or that covers part of it on a kernel without
   * IP_LOCAL_PORT_RANGE (Linux 6.3). Thrown by the Porter constructor.
   */
  MODE_UNSUPPORTED: 'ERR_PORTER_MODE_UNSUPPORTED',
  /** A lease was released twice, or its handle is unknown. */
  LEASE_RELEASED: 'ERR_PORTER_LEASE_RELEASED',
  /** Something failed inside the native addon (a bug): the call failed, nothing else. */
  INTERNAL: 'ERR_PORTER_INTERNAL',
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  ABORT_ERR: 'ABORT_ERR',
} as const;

/** An error porter raised itself, with a stable `code`. */
export class PorterError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'PorterError';
  }
  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

/** What Node's own system errors carry, as porter's connect errors do too. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
  localAddress?: string;
  localPort?: number;
}

/** Thrown or rejected when an AbortSignal aborts, as Node's own APIs do. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: ErrorOptions) {
    super(message, options);
    this.name = 'AbortError';
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor?.name;
    return ctor ? `an instance of ${ctor}` : inspect(value, { depth: -1 });
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

/** A bad argument, as Node reports it: a TypeError with a `code`. */
export class PorterTypeError extends TypeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
  override toString(): string {
    return `TypeError [${this.code}]: ${this.message}`;
  }
}

/** A number out of range, as Node reports it: a RangeError with a `code`. */
export class PorterRangeError extends RangeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
  override toString(): string {
    return `RangeError [${this.code}]: ${this.message}`;
  }
}

/** Node's ERR_INVALID_ARG_TYPE. */
export function invalidArgType(name: string, expected: string, actual: unknown): PorterTypeError {
  return new PorterTypeError(
    ErrorCodes.INVALID_ARG_TYPE,
    `The "${name}" argument must be ${expected}. Received ${describe(actual)}`,
  );
}

/** Node's ERR_INVALID_ARG_VALUE. */
export function invalidArgValue(name: string, actual: unknown, reason = 'is invalid'): PorterTypeError {
  return new PorterTypeError(
    ErrorCodes.INVALID_ARG_VALUE,
    `The argument '${name}' ${reason}. Received ${inspect(actual, { depth: 1 })}`,
  );
}

/** Node's ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, actual: unknown): PorterRangeError {
  return new PorterRangeError(
    ErrorCodes.OUT_OF_RANGE,
    `The value of "${name}" is out of range. It must be ${range}. Received ${inspect(actual)}`,
  );
}

/** A system error in the shape Node gives them. */
export function systemError(e: NativeError): SystemError {
  const where = e.address !== undefined && e.address !== null ? ` ${e.address}:${e.port}` : '';
  const local =
    e.localAddress !== undefined && e.localAddress !== null ? ` - Local (${e.localAddress}:${e.localPort})` : '';
  const err = new Error(`${e.syscall ?? 'connect'} ${e.code}${where}${local}`) as SystemError;
  err.code = e.code;
  err.errno = e.errno !== undefined && e.errno !== null ? -e.errno : 0;
  err.syscall = e.syscall ?? 'connect';
  if (e.address !== undefined && e.address !== null) err.address = e.address;
  if (e.port !== undefined && e.port !== null) err.port = e.port;
  if (e.localAddress !== undefined && e.localAddress !== null) err.localAddress = e.localAddress;
  if (e.localPort !== undefined && e.localPort !== null) err.localPort = e.localPort;
  return err;
}

/** Turns an error the native connect returned as data into the error users see. */
export function fromNative(e: NativeError, signal?: AbortSignal): Error {
  if (e.code === ErrorCodes.ABORT_ERR) return new AbortError(undefined, { cause: signal?.reason });
  if (e.code.startsWith('ERR_')) return new PorterError(e.code, e.message);
  return systemError(e);
}

/**
 * Turns an error thrown by the native binding ("CODE|message", or a Rust panic) into a
 * PorterError.
 */
export function fromThrown(thrown: unknown): Error {
  if (!(thrown instanceof Error)) return new PorterError(ErrorCodes.INTERNAL, String(thrown));
  const bar = thrown.message.indexOf('|');
  const code = bar > 0 ? thrown.message.slice(0, bar) : '';
  if (/^(ERR_[A-Z_]+|E[A-Z]+)$/.test(code)) {
    const message = thrown.message.slice(bar + 1);
    if (code === ErrorCodes.OUT_OF_RANGE) return new PorterRangeError(code, message);
    if (code === ErrorCodes.INVALID_ARG_VALUE) return new PorterTypeError(code, message);
    return new PorterError(code, message);
  }
  return new PorterError(ErrorCodes.INTERNAL, `porter native addon failed: ${thrown.message}`, { cause: thrown });
}

/** Calls into the native binding, turning whatever it throws into porter's errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (thrown) {
    throw fromThrown(thrown);
  }
}
