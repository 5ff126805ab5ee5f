/**
 * Errors porter raises, in Node's conventions: a stable `code`, the class Node uses for
 * that code (TypeError, RangeError), and for system errors the shape of Node's own
 * (`errno` negative, `syscall`, `address`, `port`, `localAddress`, `localPort`). Also the
 * one place that turns what the native binding reports (errors as data, or thrown with
 * a `code`) into these.
 */
import { getSystemErrorName, inspect } from 'node:util';
import type { ConnectError } from '@porter/native';

/** Every code porter raises itself, and Node's codes it uses for bad input. */
export const ErrorCodes = {
  /** No port is free for the destination and no fallback is allowed, or it failed too. */
  EXHAUSTED: 'ERR_PORTER_EXHAUSTED',
  /** The default Porter was configured twice with different options. */
  DEFAULT_CONFIGURED: 'ERR_PORTER_DEFAULT_CONFIGURED',
  /**
   * The mode cannot keep its promise on this host: mode 'kernel' with a range that has no
   * port in the kernel's ephemeral range, or that covers part of it on a kernel without
   * IP_LOCAL_PORT_RANGE (Linux 6.3). Thrown by the Porter constructor.
   */
  MODE_UNSUPPORTED: 'ERR_PORTER_MODE_UNSUPPORTED',
  /** `connect()` / `allocate()` on a Porter that was closed. */
  CLOSED: 'ERR_PORTER_CLOSED',
  /** A lease was released twice, or its lease id is unknown. */
  LEASE_RELEASED: 'ERR_PORTER_LEASE_RELEASED',
  /** Something failed inside the native addon (a bug): the call failed, nothing else. */
  INTERNAL: 'ERR_PORTER_INTERNAL',
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  /** A port that is not an integer in 0-65535 (or 1-65535 where 0 makes no sense). */
  SOCKET_BAD_PORT: 'ERR_SOCKET_BAD_PORT',
  /** Not an IP address where one is required. */
  INVALID_IP_ADDRESS: 'ERR_INVALID_IP_ADDRESS',
  /** A required option was not given. */
  MISSING_ARGS: 'ERR_MISSING_ARGS',
  /** A method called on something other than an instance of its class. */
  INVALID_THIS: 'ERR_INVALID_THIS',
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
  /** For `syscall: 'setsockopt'`: the socket option the kernel refused (`SO_MARK`, ...). */
  option?: string;
}

/** Thrown or rejected when an AbortSignal aborts, as Node's own APIs do. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: ErrorOptions) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** How Node describes a received value in its messages ("Received type number (5)"). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    let ctor: string | undefined;
    try {
      ctor = (value as object).constructor?.name;
    } catch {
      // A throwing getter or a revoked Proxy: describe it without its constructor.
    }
    return ctor ? `an instance of ${ctor}` : safeInspect(value, { depth: -1 });
  }
  let shown = safeInspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

/** util.inspect that never throws (a Proxy with throwing traps, say). */
function safeInspect(value: unknown, options: Parameters<typeof inspect>[1]): string {
  try {
    return inspect(value, options);
  } catch {
    return `[${typeof value}]`;
  }
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
    `The argument '${name}' ${reason}. Received ${safeInspect(actual, { depth: 1 })}`,
  );
}

/** Node's ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, actual: unknown): PorterRangeError {
  return new PorterRangeError(
    ErrorCodes.OUT_OF_RANGE,
    `The value of "${name}" is out of range. It must be ${range}. Received ${safeInspect(actual, {})}`,
  );
}

/** Node's ERR_SOCKET_BAD_PORT, as net.connect throws it. */
export function badPort(name: string, actual: unknown, allowZero: boolean): PorterRangeError {
  return new PorterRangeError(
    ErrorCodes.SOCKET_BAD_PORT,
    `${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${describe(actual)}.`,
  );
}

/**
 * Node's ERR_INVALID_IP_ADDRESS, as net.connect throws it for a bad localAddress (with the
 * argument's name added, which Node's message leaves out).
 */
export function invalidIpAddress(name: string, actual: unknown, why?: string): PorterTypeError {
  return new PorterTypeError(
    ErrorCodes.INVALID_IP_ADDRESS,
    `Invalid IP address: ${safeInspect(actual, {})} (the "${name}" argument${why === undefined ? '' : `: ${why}`})`,
  );
}

/** A method called with `this` not an instance of `type` (Node's ERR_INVALID_THIS). */
export function invalidThis(type: string): PorterTypeError {
  return new PorterTypeError(ErrorCodes.INVALID_THIS, `Value of "this" must be of type ${type}`);
}

/**
 * A system error in the shape Node gives them, from what the native connect reported: the
 * core names the errno (`code`), `errno` is negative as in Node.
 */
export function systemError(e: ConnectError): SystemError {
  const { code } = e;
  const where = e.address !== undefined && e.address !== null ? ` ${e.address}:${e.port}` : '';
  const local =
    e.localAddress !== undefined && e.localAddress !== null ? ` - Local (${e.localAddress}:${e.localPort})` : '';
  const option = e.option !== undefined && e.option !== null ? ` ${e.option}` : '';
  const err = new Error(`${e.syscall ?? 'connect'}${option} ${code}${where}${local}`) as SystemError;
  err.code = code;
  err.errno = e.errno !== undefined && e.errno !== null ? -e.errno : 0;
  err.syscall = e.syscall ?? 'connect';
  if (e.address !== undefined && e.address !== null) err.address = e.address;
  if (e.port !== undefined && e.port !== null) err.port = e.port;
  if (e.localAddress !== undefined && e.localAddress !== null) err.localAddress = e.localAddress;
  if (e.localPort !== undefined && e.localPort !== null) err.localPort = e.localPort;
  if (e.option !== undefined && e.option !== null) err.option = e.option;
  return err;
}

/**
 * What a libuv call of Node's answered (a negative errno), as Node reports it: the code
 * Node names it with (`util.getSystemErrorName`; "Unknown system error -N" for one it has
 * no name for), `errno`, `syscall`.
 */
export function uvError(errno: number, syscall: string): SystemError {
  const code = getSystemErrorName(-Math.abs(errno));
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -Math.abs(errno), syscall });
}

/** Codes of bad input, by the class Node throws them with. */
const TYPE_ERRORS = new Set<string>([
  ErrorCodes.MISSING_ARGS,
  ErrorCodes.INVALID_ARG_TYPE,
  ErrorCodes.INVALID_ARG_VALUE,
  ErrorCodes.INVALID_IP_ADDRESS,
]);
const RANGE_ERRORS = new Set<string>([ErrorCodes.OUT_OF_RANGE, ErrorCodes.SOCKET_BAD_PORT]);

/** A porter error (thrown by the binding with `code` set, or reported as data) for users. */
function coded(code: string, message: string, cause?: unknown): Error {
  if (TYPE_ERRORS.has(code)) return new PorterTypeError(code, message);
  if (RANGE_ERRORS.has(code)) return new PorterRangeError(code, message);
  return new PorterError(code, message, cause === undefined ? undefined : { cause });
}

/** Turns an error the native connect returned as data into the error users see. */
export function fromNativeError(e: ConnectError, signal?: { readonly reason: unknown }): Error {
  if (e.code === ErrorCodes.ABORT_ERR) return new AbortError(undefined, { cause: signal?.reason });
  if (e.code.startsWith('ERR_')) return coded(e.code, e.message);
  return systemError(e);
}

/**
 * Turns what the native binding threw into porter's errors: errors it raises carry a
 * `code` porter defines (ERR_*), kept as they are; anything else (a Rust panic, which
 * napi-rs reports with its own status, or a failure inside napi) is ERR_PORTER_INTERNAL.
 */
export function fromThrown(thrown: unknown): Error {
  if (thrown instanceof Error) {
    const code = (thrown as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_')) return coded(code, thrown.message);
  }
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return new PorterError(ErrorCodes.INTERNAL, `porter native addon failed: ${message}`, { cause: thrown });
}

/** Calls into the native binding, turning whatever it throws into porter's errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (thrown) {
    throw fromThrown(thrown);
  }
}
