/**
 * Synchronous validation of every option users pass, with Node's error codes
 * (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE).
 */
import { isIP } from 'node:net';
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js';

export function validateObject(value: unknown, name: string): asserts value is Record<string, unknown> {
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
  if (Number.isNaN(value) || value < min || value > max) {
    throw outOfRange(name, max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `>= ${min} && <= ${max}`, value);
  }
  return value;
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validatePort(value: unknown, name: string, allowZero = false): number {
  // Node accepts numeric strings for ports; so do we.
  const n = typeof value === 'string' && /^[0-9]+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw outOfRange(name, `>= ${allowZero ? 0 : 1} and <= 65535`, value);
  }
  return n;
}

export function validateIp(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (isIP(value) === 0) throw invalidArgValue(name, value, 'must be an IP address');
  return value;
}

export function validateFamily(value: unknown, name: string): 0 | 4 | 6 {
  if (value === undefined || value === null) return 0;
  if (value === 'IPv4') return 4;
  if (value === 'IPv6') return 6;
  if (value !== 0 && value !== 4 && value !== 6) throw invalidArgValue(name, value, 'must be one of: 0, 4, 6');
  return value;
}

export function validateAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (
    value === null ||
    typeof value !== 'object' ||
    !('aborted' in value) ||
    typeof (value as AbortSignal).addEventListener !== 'function'
  ) {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
  return value as AbortSignal;
}
