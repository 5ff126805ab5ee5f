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
import { AbortError, defaultPorter, type Porter, type ConnectOptions as TcpConnectOptions } from '@porter/core';
import {
  kConnectDeadline,
  type LongTimeout,
  portLeaseOf,
  setLongTimeout,
  validateAbortSignal,
  validateBoolean,
  validateFunction,
  validateObject,
  validateString,
  validateTimeout,
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
  /** The Porter whose ports to use (default: the process-wide default instance). */
  porter?: Porter | undefined;
}

/** The parts of Porter this package uses (duck-typed: a CommonJS and an ESM copy both fit). */
function validatePorter(value: unknown): Porter {
  if (value === undefined) return defaultPorter();
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as Porter).connect !== 'function' ||
    typeof (value as Porter).createConnection !== 'function' ||
    typeof (value as Porter).snapshot !== 'function'
  ) {
    throw invalidArgType('options.porter', 'an instance of Porter', value);
  }
  return value as Porter;
}

function isBufferLike(value: unknown): boolean {
  return ArrayBuffer.isView(value);
}

/** What tls.connect gets, checked before any connection is made. */
export interface Prepared {
  porter: Porter;
  tcp: TcpConnectOptions;
  tls: tls.ConnectionOptions;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
}

export function prepare(options: ConnectOptions): Prepared {
  validateObject(options, 'options');
  const porter = validatePorter(options.porter);
  const loose = options as ConnectOptions & { socket?: unknown; path?: unknown; localPort?: unknown };
  if (loose.socket !== undefined && loose.socket !== null) {
    throw invalidArgValue('options.socket', '[socket]', 'is made by porter');
  }
  if (loose.localPort !== undefined) throw invalidArgValue('options.localPort', loose.localPort, 'is chosen by porter');
  if (loose.path !== undefined && loose.path !== null) {
    throw invalidArgValue('options.path', loose.path, 'is not supported (porter connects over TCP)');
  }
  const host = options.host ?? 'localhost';
  if (typeof host !== 'string' || host.length === 0) throw invalidArgType('options.host', 'a non-empty string', host);

  // SNI: the host when it is a name, never an IP address (RFC 6066). An IP given as
  // servername is still the name the certificate is checked against.
  let servername: string | undefined;
  let identity = host;
  if (options.servername !== undefined && options.servername !== null && options.servername !== '') {
    validateString(options.servername, 'options.servername');
    if (isIP(options.servername) === 0) servername = options.servername;
    else identity = options.servername;
  } else if (isIP(host) === 0) {
    servername = host;
  }

  if (options.checkServerIdentity !== undefined)
    validateFunction(options.checkServerIdentity, 'options.checkServerIdentity');
  if (options.rejectUnauthorized !== undefined)
    validateBoolean(options.rejectUnauthorized, 'options.rejectUnauthorized');
  // A secure context must be one tls.createSecureContext() made: anything else would only
  // fail in tls.connect, after a TCP connection was made.
  if (
    options.secureContext !== undefined &&
    !(options.secureContext instanceof (tls as unknown as { SecureContext: new () => object }).SecureContext)
  ) {
    throw invalidArgType(
      'options.secureContext',
      'an instance of SecureContext (tls.createSecureContext())',
      options.secureContext,
    );
  }
  if (options.session !== undefined && !isBufferLike(options.session)) {
    throw invalidArgType('options.session', 'an instance of Buffer or Uint8Array', options.session);
  }
  const alpn = options.ALPNProtocols as unknown;
  if (alpn !== undefined) {
    const ok = Array.isArray(alpn)
      ? alpn.every((p) => typeof p === 'string' || isBufferLike(p))
      : isBufferLike(alpn) && !(alpn instanceof DataView);
    if (!ok) throw invalidArgType('options.ALPNProtocols', 'an array of strings or Buffers, or a Buffer', alpn);
  }
  if (options.minDHSize !== undefined && (typeof options.minDHSize !== 'number' || !(options.minDHSize > 0))) {
    throw invalidArgValue('options.minDHSize', options.minDHSize, 'must be a positive number');
  }

  const {
    porter: _porter,
    timeout,
    signal,
    localAddress,
    family,
    lookup,
    hints,
    noDelay,
    keepAlive,
    keepAliveInitialDelay,
    allowHalfOpen,
    autoSelectFamily,
    autoSelectFamilyAttemptTimeout,
    socketOptions,
    ...rest
  } = options;
  const tcp: TcpConnectOptions = { host, port: options.port };
  // Only the fields that were given: porter validates each one that is present.
  if (localAddress !== undefined) tcp.localAddress = localAddress;
  if (family !== undefined) tcp.family = family;
  if (lookup !== undefined) tcp.lookup = lookup;
  if (hints !== undefined) tcp.hints = hints;
  if (noDelay !== undefined) tcp.noDelay = noDelay;
  if (keepAlive !== undefined) tcp.keepAlive = keepAlive;
  if (keepAliveInitialDelay !== undefined) tcp.keepAliveInitialDelay = keepAliveInitialDelay;
  if (allowHalfOpen !== undefined) tcp.allowHalfOpen = allowHalfOpen;
  if (autoSelectFamily !== undefined) tcp.autoSelectFamily = autoSelectFamily;
  if (autoSelectFamilyAttemptTimeout !== undefined) tcp.autoSelectFamilyAttemptTimeout = autoSelectFamilyAttemptTimeout;
  if (socketOptions !== undefined) tcp.socketOptions = socketOptions;
  if (timeout !== undefined) tcp.timeout = timeout;
  if (signal !== undefined) tcp.signal = signal;

  // The secure context is built now, as tls.connect would build it, so that a bad
  // certificate, key, CA or cipher list throws here, before any connection is made.
  const secureContext = rest.secureContext ?? secureContextOf(rest);
  // (allowHalfOpen is read by tls.connect though @types/node does not list it.)
  const tlsOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    ...rest,
    host: identity,
    port: undefined,
    servername,
    secureContext,
    allowHalfOpen: allowHalfOpen === true,
  };
  if (servername === undefined) delete tlsOptions.servername;
  return { porter, tcp, tls: tlsOptions, timeout, signal };
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
  const { timeout, signal } = prepared;
  if (timeout !== undefined) validateTimeout(timeout, 'options.timeout');
  validateAbortSignal(signal, 'options.signal');
  // Throws synchronously on bad TCP options (porter's validation).
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
      address: lease?.remoteAddress ?? (last ? last.slice(0, last.lastIndexOf(':')) : String(prepared.tcp.host)),
      port: lease?.remotePort ?? Number(prepared.tcp.port),
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
