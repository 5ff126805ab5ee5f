/**
 * The one validator of a connect's options, shared by `porter.connect`, `createConnection`
 * (and so the Agents and the undici connector) and @porter/tls. It reads each option once
 * (a getter runs once) and throws at the call with Node's codes. Node's own options mean
 * what they mean in `net.connect`: null is the same as leaving an option out, and an
 * empty or absent `host` is 'localhost'. porter's own options (`socketOptions`) must be
 * what they say. Options porter cannot honour are refused (ERR_INVALID_ARG_VALUE).
 */
import { isIP, type LookupFunction } from 'node:net';
import type * as native from '@porter/native';
import { canonicalIp } from './address.js';
import { invalidArgType, invalidArgValue } from './errors.js';
import { toNativeSocketOptions, validateSocketOptions } from './sockopts.js';
import {
  missingArg,
  refuseOptions,
  validateAbortSignal,
  validateBoolean,
  validateFamily,
  validateFunction,
  validateInteger,
  validateIp,
  validateNumber,
  validateObject,
  validatePort,
  validateTimeout,
} from './validate.js';

/** Options no connect of porter's can honour (of net.connect, http's Agents, undici), and why. */
const UNHONOURED = {
  localPort: 'is chosen by porter',
  path: 'is not supported (porter connects over TCP)',
  socketPath: 'is not supported (porter connects over TCP)',
  fd: 'is not supported (porter makes the socket)',
  socket: 'is made by porter',
} as const;

/** The options of `names` that porter refuses, with why: for {@link refuseOptions}. */
export function unhonoured(...names: (keyof typeof UNHONOURED)[]): Readonly<Record<string, string>> {
  return Object.fromEntries(names.map((n) => [n, UNHONOURED[n]]));
}

/** What a connect refuses: the options of `net.connect` that are not TCP connects porter makes. */
const CONNECT_REFUSED = unhonoured('localPort', 'path', 'fd');

/** Whether `value` counts as not given (Node reads null as absent). */
const absent = (value: unknown): value is null | undefined => value === undefined || value === null;

/**
 * A connect's `host`, as `net.connect` reads it: a string ('', null or none: 'localhost');
 * an IP literal in canonical form, its scope naming an interface of this host. A name
 * with a NUL is refused: the resolver would look up what comes before it.
 */
function connectHost(value: unknown): string {
  const name = 'options.host';
  if (absent(value) || value === '') return 'localhost';
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  if (value.includes('\0')) throw invalidArgValue(name, value, 'must not contain a NUL character');
  return isIP(value) === 0 ? value : canonicalIp(validateIp(value, name));
}

/**
 * ERR_INVALID_ARG_VALUE when `localAddress` is not of the family of `address` (an IP
 * literal): checked here for literal hosts, and for the addresses a name resolves to
 * when a route to one is made.
 */
export function checkSameFamily(
  localAddress: string | undefined,
  address: string,
  name = 'options.localAddress',
): void {
  if (localAddress !== undefined && isIP(localAddress) !== isIP(address)) {
    throw invalidArgValue(name, localAddress, `is not of the family of ${address}`);
  }
}

/** Checks a connect's options synchronously, reading each once. */
export function checkConnectOptions(options: unknown): CheckedConnect {
  validateObject(options, 'options');
  const o = options as Record<string, unknown>;
  refuseOptions(o, CONNECT_REFUSED);
  const host = connectHost(o.host);
  const rawPort = o.port;
  if (rawPort === undefined) throw missingArg('The "options.port" argument must be specified');
  const port = validatePort(rawPort, 'options.port');
  const checked = new CheckedConnect(o, host, isIP(host) as 0 | 4 | 6, port);
  if (checked.hostFamily !== 0) checkSameFamily(checked.localAddress, host);
  return checked;
}

/**
 * The options an Agent or a connector lays over every connection it makes, checked when
 * it is made as a connect's are (`host` and `port` come with each request), with the
 * options it cannot honour (`refused`, name to why) refused.
 */
export function checkConnectSettings(options: object, refused: Readonly<Record<string, string>>): ConnectSettings {
  refuseOptions(options, refused);
  return new ConnectSettings(options as Record<string, unknown>);
}

/**
 * What a connect is set to do, checked: everything but where it goes. An Agent or a
 * connector checks these once when it is made, for the options it lays over every
 * connection. Checked in the order below. A class, so that every connect's checked
 * options are one object of one shape, made at once: no object spread (a spread after
 * other properties copies them one at a time into a growing property store) and no
 * closure per option (about 0.45 KB less garbage per connect).
 */
export class ConnectSettings {
  /** The family to resolve a name to: 0 (any), 4 or 6. */
  family: 0 | 4 | 6;
  /** A source address for this connect, canonical. */
  localAddress: string | undefined;
  lookup: LookupFunction | undefined;
  hints: number | undefined;
  /** Milliseconds: a deadline for `porter.connect`, the idle timeout for createConnection. */
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveInitialDelay: number;
  allowHalfOpen: boolean;
  autoSelectFamily: boolean | undefined;
  /** `autoSelectFamilyAttemptTimeout`: milliseconds for each address but the last. */
  attemptTimeout: number | undefined;
  /** The connect's own socket options, for the core (over the Porter's). */
  socketOptions: native.SocketOptions | undefined;

  constructor(o: Record<string, unknown>) {
    this.family = validateFamily(o.family, 'options.family');
    const local = o.localAddress;
    // As in net: an empty source address is none.
    this.localAddress =
      absent(local) || local === '' ? undefined : canonicalIp(validateIp(local, 'options.localAddress'));
    const lookup = o.lookup;
    this.lookup = absent(lookup) ? undefined : (validateFunction(lookup, 'options.lookup') as LookupFunction);
    const hints = o.hints;
    this.hints = absent(hints) ? undefined : validateInteger(hints, 'options.hints', 0, 2 ** 31 - 1);
    const timeout = o.timeout;
    this.timeout = absent(timeout) ? undefined : validateTimeout(timeout, 'options.timeout');
    const signal = o.signal;
    this.signal = absent(signal) ? undefined : validateAbortSignal(signal, 'options.signal');
    const noDelay = o.noDelay;
    this.noDelay = absent(noDelay) ? false : validateBoolean(noDelay, 'options.noDelay');
    const keepAlive = o.keepAlive;
    this.keepAlive = absent(keepAlive) ? false : validateBoolean(keepAlive, 'options.keepAlive');
    const delay = o.keepAliveInitialDelay;
    this.keepAliveInitialDelay = absent(delay) ? 0 : validateNumber(delay, 'options.keepAliveInitialDelay', 0);
    const halfOpen = o.allowHalfOpen;
    this.allowHalfOpen = absent(halfOpen) ? false : validateBoolean(halfOpen, 'options.allowHalfOpen');
    const auto = o.autoSelectFamily;
    this.autoSelectFamily = absent(auto) ? undefined : validateBoolean(auto, 'options.autoSelectFamily');
    const attempt = o.autoSelectFamilyAttemptTimeout;
    this.attemptTimeout = absent(attempt)
      ? undefined
      : validateInteger(attempt, 'options.autoSelectFamilyAttemptTimeout', 1, 2 ** 31 - 1);
    // porter's own option: null is a mistake, not a default.
    const socketOptions = o.socketOptions;
    this.socketOptions =
      socketOptions === undefined
        ? undefined
        : toNativeSocketOptions(validateSocketOptions(socketOptions, 'options.socketOptions'));
  }
}

/** A connect's options, checked: the settings, and where it goes (checked before them). */
export class CheckedConnect extends ConnectSettings {
  /** A host name, or an IP literal in canonical form (see address.ts). */
  host: string;
  /** 4 or 6 for an IP literal, 0 for a name. */
  hostFamily: 0 | 4 | 6;
  port: number;

  constructor(o: Record<string, unknown>, host: string, hostFamily: 0 | 4 | 6, port: number) {
    super(o);
    this.host = host;
    this.hostFamily = hostFamily;
    this.port = port;
  }
}
