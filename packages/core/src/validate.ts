/**
 * The one set of validators of porter's packages, with Node's codes and classes as Node's
 * own functions throw them: ERR_INVALID_ARG_TYPE and ERR_INVALID_ARG_VALUE (TypeError),
 * ERR_OUT_OF_RANGE (RangeError), ERR_SOCKET_BAD_PORT (RangeError) for ports and
 * ERR_INVALID_IP_ADDRESS (TypeError) for addresses, as net.connect does. Every check
 * reads each property once (a getter runs once) and throws synchronously.
 */
import { isIP } from 'node:net';
import * as native from '@porter/native';
import {
  badPort,
  ErrorCodes,
  invalidArgType,
  invalidArgValue,
  invalidIpAddress,
  outOfRange,
  PorterTypeError,
} from './errors.js';

export function validateObject(value: unknown, name: string): asserts value is object {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value);
  }
}

export function validateInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

export function validateNumber(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (Number.isNaN(value) || value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/**
 * Milliseconds of a timeout: a number from 0 to 2^53 - 1. Any of them works, beyond what
 * one Node timer holds too (deadline.ts).
 */
export function validateTimeout(value: unknown, name: string): number {
  return validateNumber(value, name, 0);
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  return value;
}

/**
 * A port as net.connect takes it: a number or a numeric string (ERR_INVALID_ARG_TYPE
 * otherwise), an integer from 0 (or 1 when `allowZero` is false) to 65535
 * (ERR_SOCKET_BAD_PORT otherwise).
 */
export function validatePort(value: unknown, name: string, allowZero = false): number {
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw invalidArgType(name, 'one of type number or string', value);
  }
  const n = typeof value === 'string' ? (value.trim() === '' ? Number.NaN : Number(value)) : value;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw badPort(name === 'options.port' ? 'Port' : name, value, allowZero);
  }
  return n;
}

/**
 * An IP literal (IPv4, IPv6, IPv4-mapped IPv6): a string (ERR_INVALID_ARG_TYPE), valid
 * (ERR_INVALID_IP_ADDRESS). An IPv6 literal's scope (`fe80::1%eth0`, `fe80::1%2`) must
 * name an interface of this host, by name or by index.
 */
export function validateIp(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (isIP(value) === 0) throw invalidIpAddress(name, value);
  const zone = value.indexOf('%');
  // By name or index: the native side answers null for an index no interface has now.
  if (zone !== -1 && native.interfaceIndex(value.slice(zone + 1)) == null) {
    throw invalidIpAddress(name, value, `this host has no network interface ${JSON.stringify(value.slice(zone + 1))}`);
  }
  return value;
}

export function validateFamily(value: unknown, name: string): 0 | 4 | 6 {
  if (value === undefined || value === null) return 0;
  if (value === 'IPv4') return 4;
  if (value === 'IPv6') return 6;
  if (value !== 0 && value !== 4 && value !== 6) throw invalidArgValue(name, value, 'must be one of: 0, 4, 6');
  return value;
}

export function validateFunction(value: unknown, name: string): (...args: never[]) => unknown {
  if (typeof value !== 'function') throw invalidArgType(name, 'of type function', value);
  return value as (...args: never[]) => unknown;
}

/**
 * An AbortSignal (or undefined). Only a real AbortSignal is taken: an object that merely
 * looks like one cannot be trusted to fire 'abort' once, or at all.
 */
export function validateAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalidArgType(name, 'an instance of AbortSignal', value);
  return value;
}

/**
 * Options porter cannot honour, refused where they are given: ERR_INVALID_ARG_VALUE for
 * the first of `refused` (option name to why) that `options` has, unless null or
 * undefined (and a `localPort` of 0, which asks for any port).
 */
export function refuseOptions(options: object, refused: Readonly<Record<string, string>>, name = 'options'): void {
  // for...in, not Object.entries: every connect comes through here, and entries() makes
  // an array per option and one more on each call.
  for (const key in refused) {
    if (!Object.hasOwn(refused, key)) continue;
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined && value !== null && !(key === 'localPort' && value === 0)) {
      throw invalidArgValue(`${name}.${key}`, value, refused[key] as string);
    }
  }
}

/** Node's ERR_MISSING_ARGS, for an option that must be given. */
export function missingArg(message: string): PorterTypeError {
  return new PorterTypeError(ErrorCodes.MISSING_ARGS, message);
}
