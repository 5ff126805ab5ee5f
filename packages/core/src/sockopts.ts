/**
 * `socketOptions`, validated with Node's codes (thrown synchronously), normalised, and
 * turned into what the native core takes. The core sets them on the socket; this module
 * only checks and carries them.
 */
import type * as native from '@porter/native';
import { invalidArgType, invalidArgValue } from './errors.js';
import type { KeepAliveOptions, SocketOptions } from './types.js';
import { validateBoolean, validateInteger, validateObject, validateString } from './validate.js';

/** The longest device or congestion control name the kernel keeps (IFNAMSIZ - 1, TCP_CA_NAME_MAX - 1). */
const NAME_MAX = 15;
/** MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL, in seconds. */
const KEEPALIVE_SECONDS_MAX = 32_767;

const FIELDS = new Set([
  'userTimeoutMs',
  'keepAlive',
  'mark',
  'bindToDevice',
  'tos',
  'freebind',
  'transparent',
  'lingerZeroOnClose',
  'fastOpen',
  'congestion',
]);
const KEEPALIVE_FIELDS = new Set(['idleMs', 'intervalMs', 'count']);

/** Own keys of `value` that are not in `known`: a misspelt option would do nothing. */
function rejectUnknown(value: object, known: Set<string>, name: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      throw invalidArgValue(`${name}.${key}`, (value as Record<string, unknown>)[key], 'is not an option porter knows');
    }
  }
}

function validateName(value: unknown, name: string): string {
  const text = validateString(value, name);
  if (text.includes('\0') || Buffer.byteLength(text) > NAME_MAX) {
    throw invalidArgValue(
      name,
      text,
      `must be at most ${NAME_MAX} bytes with no NUL (the kernel cuts longer names short)`,
    );
  }
  return text;
}

function validateSeconds(value: unknown, name: string): number {
  const ms = validateInteger(value, name, 1_000, KEEPALIVE_SECONDS_MAX * 1_000);
  if (ms % 1_000 !== 0) throw invalidArgValue(name, ms, 'must be whole seconds (the kernel counts them in seconds)');
  return ms;
}

function validateKeepAlive(value: unknown, name: string): KeepAliveOptions | false {
  if (value === false) return false;
  if (value === true) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'a boolean or an object', value);
  }
  const given = value as Record<string, unknown>;
  rejectUnknown(given, KEEPALIVE_FIELDS, name);
  const out: KeepAliveOptions = {};
  const { idleMs, intervalMs, count } = given;
  if (idleMs !== undefined) out.idleMs = validateSeconds(idleMs, `${name}.idleMs`);
  if (intervalMs !== undefined) out.intervalMs = validateSeconds(intervalMs, `${name}.intervalMs`);
  if (count !== undefined) out.count = validateInteger(count, `${name}.count`, 1, 127);
  return out;
}

/**
 * `value` as socket options: an object whose fields are each checked against what the
 * kernel takes (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE), read once
 * each; unknown fields are refused. Returns a new object with the fields given, and
 * `keepAlive: true` as `{}`.
 */
export function validateSocketOptions(value: unknown, name: string): SocketOptions {
  validateObject(value, name);
  rejectUnknown(value, FIELDS, name);
  const given = value as Record<string, unknown>;
  const out: SocketOptions = {};
  const {
    userTimeoutMs,
    keepAlive,
    mark,
    bindToDevice,
    tos,
    freebind,
    transparent,
    lingerZeroOnClose,
    fastOpen,
    congestion,
  } = given;
  if (userTimeoutMs !== undefined)
    out.userTimeoutMs = validateInteger(userTimeoutMs, `${name}.userTimeoutMs`, 0, 2 ** 31 - 1);
  if (keepAlive !== undefined) out.keepAlive = validateKeepAlive(keepAlive, `${name}.keepAlive`);
  if (mark !== undefined) out.mark = validateInteger(mark, `${name}.mark`, 0, 2 ** 32 - 1);
  if (bindToDevice !== undefined) out.bindToDevice = validateName(bindToDevice, `${name}.bindToDevice`);
  if (tos !== undefined) {
    const t = validateInteger(tos, `${name}.tos`, 0, 255);
    if ((t & 0b11) !== 0) {
      throw invalidArgValue(`${name}.tos`, t, 'must have its two low (ECN) bits zero: the kernel manages them on TCP');
    }
    out.tos = t;
  }
  if (freebind !== undefined) out.freebind = validateBoolean(freebind, `${name}.freebind`);
  if (transparent !== undefined) out.transparent = validateBoolean(transparent, `${name}.transparent`);
  if (lingerZeroOnClose !== undefined) {
    out.lingerZeroOnClose = validateBoolean(lingerZeroOnClose, `${name}.lingerZeroOnClose`);
  }
  if (fastOpen !== undefined) out.fastOpen = validateBoolean(fastOpen, `${name}.fastOpen`);
  if (congestion !== undefined) out.congestion = validateName(congestion, `${name}.congestion`);
  return out;
}

/** Validated options as the native core takes them; undefined when none is given. */
export function toNativeSocketOptions(o: SocketOptions): native.SocketOptions | undefined {
  const out: native.SocketOptions = {};
  let any = false;
  for (const key of FIELDS) {
    const value = o[key as keyof SocketOptions];
    if (value === undefined) continue;
    any = true;
    if (key === 'keepAlive') {
      out.keepAlive = value === false ? { enabled: false } : { enabled: true, ...(value as KeepAliveOptions) };
    } else {
      (out as Record<string, unknown>)[key] = value;
    }
  }
  return any ? out : undefined;
}

/** The options a native registry reports, as a Porter's. */
export function fromNativeSocketOptions(o: native.SocketOptions | undefined | null): SocketOptions {
  const out: SocketOptions = {};
  if (o === undefined || o === null) return out;
  for (const key of FIELDS) {
    const value = (o as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    if (key === 'keepAlive') {
      const k = value as native.KeepAliveOptions;
      if (!k.enabled) {
        out.keepAlive = false;
        continue;
      }
      const timings: KeepAliveOptions = {};
      if (k.idleMs !== undefined && k.idleMs !== null) timings.idleMs = k.idleMs;
      if (k.intervalMs !== undefined && k.intervalMs !== null) timings.intervalMs = k.intervalMs;
      if (k.count !== undefined && k.count !== null) timings.count = k.count;
      out.keepAlive = timings;
    } else {
      (out as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}
