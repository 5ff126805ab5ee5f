/**
 * Bad command lines: one error class with a stable code, the argument it is about and
 * the fix, and the parsers that turn option strings into values (each throws it).
 */
import { isIP } from 'node:net';

/** Stable codes of usage errors (exit code 2). */
export const UsageCodes = {
  /** An option or argument has a value that cannot be used. */
  INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  /** An option the command does not have. */
  UNKNOWN_OPTION: 'ERR_UNKNOWN_OPTION',
  /** A required argument or option value is missing. */
  MISSING_ARGUMENT: 'ERR_MISSING_ARGUMENT',
  /** More arguments than the command takes. */
  EXCESS_ARGUMENTS: 'ERR_EXCESS_ARGUMENTS',
  /** A command porter does not have. */
  UNKNOWN_COMMAND: 'ERR_UNKNOWN_COMMAND',
  /** --mode cannot work with this --range on this host (porter's own code). */
  MODE_UNSUPPORTED: 'ERR_PORTER_MODE_UNSUPPORTED',
  /** hold: the connections asked for cannot fit one process's open-file limit. */
  FD_LIMIT: 'ERR_PORTER_FD_LIMIT',
} as const;

export type UsageCode = (typeof UsageCodes)[keyof typeof UsageCodes];

/** A bad command line: names the argument and says what to do instead. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    readonly code: UsageCode,
    /** The option or argument concerned, as typed (`--count`, `<host:port>`). */
    readonly argument: string,
    message: string,
    /** What to type instead. */
    readonly fix: string,
  ) {
    super(message);
  }
}

/** The "Examples:" section of a command's --help. */
export const examples = (lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

const invalid = (argument: string, message: string, fix: string): UsageError =>
  new UsageError(UsageCodes.INVALID_ARG_VALUE, argument, message, fix);

/** A whole number in [min, max]. */
export function parseInteger(value: string, argument: string, min: number, max: number, example: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalid(
      argument,
      `${argument} must be a whole number from ${min} to ${max.toLocaleString('en-US')}, got "${value}"`,
      `pass e.g. ${argument} ${example}`,
    );
  }
  return n;
}

/** A number >= min (fractions allowed). */
export function parseNumber(value: string, argument: string, min: number, example: string): number {
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isFinite(n) || n < min) {
    throw invalid(
      argument,
      `${argument} must be a number of at least ${min}, got "${value}"`,
      `pass e.g. ${argument} ${example}`,
    );
  }
  return n;
}

/** One destination. */
export interface Target {
  host: string;
  port: number;
  /** As typed, for messages. */
  text: string;
}

/** `host:port`, `1.2.3.4:80` or `[::1]:443`. */
export function parseTarget(text: string): Target {
  const fix = 'give each destination as host:port, e.g. 127.0.0.1:8080, broker.example:8883 or [::1]:443';
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = /^([^:[\]]+):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  if (match === null) throw invalid('<host:port>', `"${text}" is not host:port`, fix);
  const host = match[1] as string;
  if (bracketed !== null && isIP(host) !== 6) {
    throw invalid('<host:port>', `"${host}" in brackets is not an IPv6 address`, fix);
  }
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('<host:port>', `the port of "${text}" must be from 1 to 65535`, fix);
  }
  return { host, port, text };
}

/** `port` or `host:port` to listen on (`[::1]:9464` for IPv6); host default 127.0.0.1. */
export function parseListen(value: string, argument: string): { host: string; port: number } {
  const fix = `pass a port or host:port, e.g. ${argument} 9464 or ${argument} 0.0.0.0:9464 (0: any free port)`;
  const match = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d+)$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (match === null || !(port >= 0 && port <= 65535))
    throw invalid(argument, `${argument} "${value}" is not [host:]port`, fix);
  const host = match[1] ?? match[2] ?? '127.0.0.1';
  if (isIP(host) === 0 && host !== 'localhost')
    throw invalid(argument, `${argument}: "${host}" is not an IP address`, fix);
  return { host, port };
}

/** Porter's allocation mode. */
export function parseMode(value: string, argument = '--mode'): 'hybrid' | 'pool' | 'kernel' {
  if (value === 'hybrid' || value === 'pool' || value === 'kernel') return value;
  throw invalid(
    argument,
    `${argument} must be hybrid, pool or kernel, got "${value}"`,
    `pass ${argument} hybrid (the default), ${argument} pool or ${argument} kernel`,
  );
}

/** `lo-hi`, inclusive; or 'system' (the kernel's ip_local_port_range). */
export function parseRange(value: string, argument = '--range'): [number, number] | 'system' {
  if (value === 'system') return 'system';
  const match = /^(\d+)-(\d+)$/.exec(value.trim());
  const first = match ? Number(match[1]) : Number.NaN;
  const last = match ? Number(match[2]) : Number.NaN;
  if (!(first >= 1 && last <= 65535 && first <= last)) {
    throw invalid(
      argument,
      `${argument} must be lo-hi with 1 <= lo <= hi <= 65535 (or "system"), got "${value}"`,
      `pass e.g. ${argument} 10000-32767`,
    );
  }
  return [first, last];
}

/** A comma-separated list of IP addresses. */
export function parseAddresses(value: string, argument = '--local'): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0)
    throw invalid(argument, `${argument} needs at least one address`, `pass e.g. ${argument} 10.0.0.2,10.0.0.3`);
  for (const address of list) {
    if (isIP(address) === 0) {
      throw invalid(
        argument,
        `"${address}" is not an IP address`,
        `list IP addresses of this host, e.g. ${argument} 10.0.0.2,10.0.0.3`,
      );
    }
  }
  if (new Set(list).size !== list.length) {
    throw invalid(argument, `${argument} lists an address twice`, 'give each source address once');
  }
  return list;
}

/**
 * A payload to send: text with \n, \r, \t and \\ escapes, or `@file` for a file's bytes.
 * Files are read by the caller; this only decodes the text form.
 */
export function decodeEscapes(text: string): Buffer {
  return Buffer.from(
    text.replace(/\\([nrt\\])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '\\': '\\' })[c] as string),
    'utf8',
  );
}
