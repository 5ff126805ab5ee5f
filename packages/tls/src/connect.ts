/**
 * connect(): TLS over a TCP connection porter makes. porter's createConnection opens the
 * TCP connection from a managed local port, and tls.connect({ socket }) wraps it while it
 * connects, as tls.connect wraps the socket it makes itself (wrapping a socket that is
 * connected already costs more per connection); the handshake starts on 'connect', and
 * the port's lease moves to the TLS socket then, so it is released when that closes. One
 * deadline (`timeout`) and one AbortSignal cover both stages.
 */
import { isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { addAbortSignal } from 'node:stream';
import * as tls from 'node:tls';
import { AbortError, type Porter, type ConnectOptions as TcpConnectOptions } from '@porter/core';
import {
  type CheckedConnect,
  checkConnectOptions,
  kConnectDeadline,
  type LongTimeout,
  portLeaseOf,
  setLongTimeout,
  validateBoolean,
  validateFunction,
  validateObject,
  validatePorter,
  validateString,
} from '@porter/core/internal';
import { closedBeforeSecure, type Endpoints, handshakeTimeout, invalidArgType, invalidArgValue } from './errors.js';

/** The options of `tls.connect` that porter takes over or that make no sense here. */
type Replaced =
  | 'host'
  | 'port'
  | 'path'
  | 'socket'
  | 'timeout'
  | 'lookup'
  | 'localAddress'
  | 'localPort'
  | 'family'
  | 'hints'
  | 'noDelay'
  | 'keepAlive'
  | 'keepAliveInitialDelay'
  | 'allowHalfOpen'
  | 'autoSelectFamily'
  | 'autoSelectFamilyAttemptTimeout'
  | 'signal'
  | 'socketOptions';

/**
 * Options of {@link connect}: those of `tls.connect` (servername, ca, cert, key, pfx,
 * passphrase, ALPNProtocols, rejectUnauthorized, checkServerIdentity, session,
 * minVersion, ciphers, secureContext, ...), the TCP options of `@porter/core`'s connect
 * (host, port, localAddress, family, lookup, hints, noDelay, keepAlive, allowHalfOpen,
 * socketOptions: set on the TCP socket before it connects, over the Porter's), and:
 * - `timeout`: milliseconds for the TCP connect and the TLS handshake together
 *   (rejects with code 'ETIMEDOUT');
 * - `signal`: an AbortSignal that aborts either stage (rejects with code 'ABORT_ERR');
 * - `porter`: the Porter whose ports to use (default: `defaultPorter()`).
 */
export interface ConnectOptions extends Omit<tls.ConnectionOptions, Replaced>, TcpConnectOptions {
  /** The Porter whose ports to use (default: the default Porter, `defaultPorter()`). */
  porter?: Porter | undefined;
}

/** The options of a connect that are TCP's: for porter's createConnection, not tls.connect. */
const TCP_OPTIONS = [
  'host',
  'port',
  'localAddress',
  'localPort',
  'path',
  'fd',
  'family',
  'lookup',
  'hints',
  'noDelay',
  'keepAlive',
  'keepAliveInitialDelay',
  'allowHalfOpen',
  'autoSelectFamily',
  'autoSelectFamilyAttemptTimeout',
  'socketOptions',
  'timeout',
  'signal',
] as const;

function isBufferLike(value: unknown): boolean {
  return ArrayBuffer.isView(value);
}

/** What tls.connect gets, checked before any connection is made. */
export interface Prepared {
  porter: Porter;
  /** The TCP options as given, for porter's createConnection (which checks them as `checked`). */
  tcp: TcpConnectOptions;
  tls: tls.ConnectionOptions;
  /** The TCP options checked (the one validator of every connect). */
  checked: CheckedConnect;
}

/** Options of tls.connect that are not TCP's, checked before a connection is made. */
export function checkTlsOptions(o: Record<string, unknown>): void {
  if (o.checkServerIdentity !== undefined) validateFunction(o.checkServerIdentity, 'options.checkServerIdentity');
  if (o.rejectUnauthorized !== undefined) validateBoolean(o.rejectUnauthorized, 'options.rejectUnauthorized');
  // A secure context must be one tls.createSecureContext() made: anything else would only
  // fail in tls.connect, after a TCP connection was made.
  const { SecureContext } = tls as unknown as { SecureContext: new () => object };
  if (o.secureContext !== undefined && !(o.secureContext instanceof SecureContext)) {
    const expected = 'an instance of SecureContext (tls.createSecureContext())';
    throw invalidArgType('options.secureContext', expected, o.secureContext);
  }
  if (o.session !== undefined && !isBufferLike(o.session)) {
    throw invalidArgType('options.session', 'an instance of Buffer or Uint8Array', o.session);
  }
  const alpn = o.ALPNProtocols;
  if (alpn !== undefined) {
    const ok = Array.isArray(alpn)
      ? alpn.every((p) => typeof p === 'string' || isBufferLike(p))
      : isBufferLike(alpn) && !(alpn instanceof DataView);
    if (!ok) throw invalidArgType('options.ALPNProtocols', 'an array of strings or Buffers, or a Buffer', alpn);
  }
  if (o.minDHSize !== undefined && (typeof o.minDHSize !== 'number' || !(o.minDHSize > 0))) {
    throw invalidArgValue('options.minDHSize', o.minDHSize, 'must be a positive number');
  }
}

/**
 * SNI and the name the certificate is checked against: the host when it is a name, never
 * an IP address (RFC 6066); an IP given as servername is still the name checked.
 */
function serverIdentity(host: string, given: unknown): { servername: string | undefined; identity: string } {
  if (given === undefined || given === null || given === '') {
    return { servername: isIP(host) === 0 ? host : undefined, identity: host };
  }
  const name = validateString(given, 'options.servername');
  return isIP(name) === 0 ? { servername: name, identity: host } : { servername: undefined, identity: name };
}

/**
 * Checks `options` (each read once) and splits them: the TCP options go to porter's
 * createConnection, the rest to tls.connect, with the secure context built now.
 */
export function prepare(options: ConnectOptions): Prepared {
  validateObject(options, 'options');
  // Each option read once: the own ones copied (what tls.connect gets), the ones porter
  // reads by name taken out of the copy, or read from `options` when not own (inherited).
  const rest: Record<string, unknown> = { ...options };
  const take = (key: string): unknown => {
    if (!Object.hasOwn(rest, key)) return (options as unknown as Record<string, unknown>)[key];
    const value = rest[key];
    delete rest[key];
    return value;
  };
  const porter = validatePorter(take('porter'));
  const socket = take('socket');
  if (socket !== undefined && socket !== null) throw invalidArgValue('options.socket', '[socket]', 'is made by porter');
  const givenServername = take('servername');
  // The TCP options, as every connect of porter's checks them.
  const tcp = Object.fromEntries(TCP_OPTIONS.map((key) => [key, take(key)]));
  const checked = checkConnectOptions(tcp);
  const { servername, identity } = serverIdentity(checked.host, givenServername);
  checkTlsOptions(rest);
  // The secure context is built now, as tls.connect would build it, so that a bad
  // certificate, key, CA or cipher list throws here, before any connection is made.
  const secureContext = (rest.secureContext as tls.SecureContext | undefined) ?? secureContextOf(rest);
  // (allowHalfOpen is read by tls.connect though @types/node does not list it.)
  const tlsOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    ...rest,
    host: identity,
    port: undefined,
    secureContext,
    allowHalfOpen: checked.allowHalfOpen,
  };
  if (servername !== undefined) tlsOptions.servername = servername;
  return { porter, tcp: tcp as unknown as TcpConnectOptions, tls: tlsOptions, checked };
}

/**
 * tls.createSecureContext(options). Its errors keep their codes (ERR_OSSL_*,
 * ERR_SSL_NO_CIPHER_MATCH, ERR_TLS_INVALID_PROTOCOL_VERSION, ...); one without a code
 * (OpenSSL's "not enough data" for a bad `pfx`, say) becomes ERR_INVALID_ARG_VALUE, with
 * the original as its cause.
 */
function secureContextOf(options: tls.SecureContextOptions): tls.SecureContext {
  try {
    return tls.createSecureContext({ ciphers: tls.DEFAULT_CIPHERS, ...options });
  } catch (err) {
    if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code !== 'string') {
      throw Object.assign(invalidArgValue('options', '[TLS options]', `make no secure context (${err.message})`), {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Opens a TLS connection from a port porter manages. Resolves after the handshake
 * ('secureConnect') to Node's own tls.TLSSocket, whose lease ({@link leaseOf}) follows
 * it. Bad options throw synchronously; any failure after that (DNS, TCP, certificate
 * verification, handshake alert, timeout, abort) rejects with Node's own error and code,
 * closes the connection and gives the port back.
 */
export function connect(options: ConnectOptions): Promise<tls.TLSSocket> {
  const prepared = prepare(options);
  const { timeout, signal } = prepared.checked;
  const started = performance.now();
  const { socket, tcp } = openTls(prepared, undefined, timeout);
  return handshake(socket, tcp, prepared, timeout === undefined ? undefined : started + timeout, signal);
}

/**
 * The TLS socket on a TCP socket from porter's createConnection, wrapped while it
 * connects, as `tls.connect` wraps its own: the handshake starts on 'connect', and the
 * lease moves to the TLS socket then. Shared by {@link connect} and createConnection.
 */
export function openTls(
  prepared: Prepared,
  secureConnectListener?: () => void,
  connectDeadline?: number,
): { socket: tls.TLSSocket; tcp: Socket } {
  // Without the promise API's deadline and signal: those belong to the caller, which may
  // give the TCP stage a deadline of its own (the core then reports a connect over time).
  const { timeout: _deadline, signal: _signal, ...tcpOptions } = prepared.tcp;
  const tcp = prepared.porter.createConnection(
    connectDeadline === undefined
      ? tcpOptions
      : ({ ...tcpOptions, [kConnectDeadline]: connectDeadline } as typeof tcpOptions),
  );
  let socket: tls.TLSSocket;
  try {
    socket = tls.connect({ ...prepared.tls, socket: tcp }, secureConnectListener);
  } catch (err) {
    tcp.destroy();
    throw err;
  }
  tcp.once('connect', () => {
    const lease = portLeaseOf(tcp);
    if (lease !== undefined && !lease.released && !socket.destroyed) lease.follow(socket);
  });
  return { socket, tcp };
}

function handshake(
  socket: tls.TLSSocket,
  tcp: Socket,
  prepared: Prepared,
  deadline: number | undefined,
  signal: AbortSignal | undefined,
): Promise<tls.TLSSocket> {
  // Read only when an error needs them: the local address costs a getsockname.
  const where = (): Endpoints => {
    const lease = portLeaseOf(socket) ?? portLeaseOf(tcp);
    const tried = (tcp as Socket & { autoSelectFamilyAttemptedAddresses?: string[] })
      .autoSelectFamilyAttemptedAddresses;
    const last = tried?.at(-1);
    return {
      address: lease?.remoteAddress ?? (last ? last.slice(0, last.lastIndexOf(':')) : prepared.checked.host),
      port: lease?.remotePort ?? prepared.checked.port,
      localAddress: lease?.localAddress,
      localPort: lease?.localPort,
    };
  };
  return new Promise((resolve, reject) => {
    // The TCP stage's deadline is the core's (it fails with its own ETIMEDOUT); the
    // handshake gets what is left of it once connected.
    let timer: LongTimeout | undefined;
    const onConnect = (): void => {
      if (deadline === undefined) return;
      const left = deadline - performance.now();
      if (left <= 0) fail(handshakeTimeout(where()));
      else timer = setLongTimeout(() => fail(handshakeTimeout(where())), left);
    };
    const onAbort = (): void => fail(new AbortError(undefined, { cause: signal?.reason }));
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(closedBeforeSecure(where()));
    const onSecure = (): void => {
      detach();
      holdEarlyErrors(socket);
      // As net's and tls's: an abort after the connect destroys the socket.
      if (signal !== undefined) addAbortSignal(signal, socket);
      resolve(socket);
    };
    function detach(): void {
      timer?.clear();
      tcp.off('connect', onConnect);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('secureConnect', onSecure);
    }
    function fail(err: Error): void {
      detach();
      // Whatever the socket still reports after this is of no interest to anyone.
      socket.on('error', ignore);
      tcp.on('error', ignore);
      // Once connected, this side closes first: the port ages. Before, destroying the
      // TCP socket cancels porter's connect, which gives its port back.
      const lease = portLeaseOf(socket) ?? portLeaseOf(tcp);
      if (lease !== undefined && !lease.released) lease.releaseAs(true);
      socket.destroy();
      tcp.destroy();
      reject(err);
    }
    tcp.once('connect', onConnect);
    socket.once('secureConnect', onSecure);
    socket.on('error', onError);
    socket.once('close', onClose);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function ignore(): void {}

/**
 * The caller only gets the socket when its promise continuation runs, after this turn's
 * nextTick queue, where Node emits an error that came in the same read as the end of the
 * handshake (a TLS 1.3 alert, say). Such an error is held and emitted again on the next
 * turn of the event loop, when the caller has had the chance to listen for it.
 */
function holdEarlyErrors(socket: tls.TLSSocket): void {
  let held: Error | undefined;
  const onError = (err: Error): void => {
    if (socket.listenerCount('error') === 1 && held === undefined) held = err;
  };
  socket.on('error', onError);
  setImmediate(() => {
    socket.off('error', onError);
    if (held !== undefined) socket.emit('error', held);
  });
}
