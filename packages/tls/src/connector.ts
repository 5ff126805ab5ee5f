/**
 * connector(): a connect function with undici's connector contract, for
 * `new undici.Agent({ connect: connector({ porter }) })` (and Node's global fetch with
 * `setGlobalDispatcher`). Like undici's own `buildConnector`, it validates its options
 * once and returns `connect(opts, callback)`: http and https (`port: ''` is the
 * protocol's default), SNI from the host name, TLS sessions cached per server name, TCP
 * keep-alive (porter's `socketOptions.keepAlive` when given) and no-delay on, the callback called exactly once, and a connect timeout
 * that destroys the socket with undici's error (which gives the port back). undici is
 * not a dependency: the contract is plain functions and sockets.
 */
import { isIP, type Socket } from 'node:net';
import * as tls from 'node:tls';
import type { Porter } from '@porter/core';
import {
  checkConnectSettings,
  invalidArgValue,
  type LongTimeout,
  refuseOptions,
  setLongTimeout,
  unhonoured,
  validateBoolean,
  validateFunction,
  validateInteger,
  validateNumber,
  validateObject,
  validatePort,
  validatePorter,
  validateString,
  validateTimeout,
} from '@porter/core/internal';
import { checkTlsOptions } from './connect.js';
import { type CreateConnectionOptions, createConnection as tlsConnection } from './create-connection.js';

/** What undici passes to a connector. */
export interface ConnectorRequest {
  hostname: string;
  host?: string | undefined;
  protocol: string;
  port: string | number;
  servername?: string | null | undefined;
  localAddress?: string | null | undefined;
  socketPath?: string | null | undefined;
  /** A connection to tunnel TLS through (undici's proxy agent). */
  httpSocket?: Socket | undefined;
}

/** undici's connector callback: `(null, socket)` or `(error, null)`, exactly once. */
export type ConnectorCallback = (...args: [null, Socket] | [Error, null]) => void;

/** A connector: undici calls it for every new connection. */
export type Connector = (request: ConnectorRequest, callback: ConnectorCallback) => Socket | undefined;

/**
 * Options of {@link connector}: TLS options for https origins (ca, cert, key,
 * rejectUnauthorized, servername, ...), TCP options (localAddress, family, lookup), and:
 */
export interface ConnectorOptions
  extends Omit<
    CreateConnectionOptions,
    'port' | 'host' | 'timeout' | 'porter' | 'keepAlive' | 'keepAliveInitialDelay' | 'signal'
  > {
  /** The Porter whose ports to use (default: the default Porter, `defaultPorter()`). */
  porter?: Porter | undefined;
  /**
   * Milliseconds for the connect (and the TLS handshake) before the socket is destroyed
   * with undici's ConnectTimeoutError (code UND_ERR_CONNECT_TIMEOUT) and its port given
   * back. Default 10 000, as undici's; 0 turns it off.
   */
  timeout?: number | null | undefined;
  /** TLS sessions kept, one per server name (default 100, as undici's); 0 keeps none. */
  maxCachedSessions?: number | null | undefined;
  /** Offer HTTP/2 in ALPN (undici's allowH2). */
  allowH2?: boolean | undefined;
  /** TCP keep-alive (default on, as undici's, after `keepAliveInitialDelay`, default 60 s). */
  keepAlive?: boolean | null | undefined;
  keepAliveInitialDelay?: number | null | undefined;
}

const CONNECT_TIMEOUT_ERROR = Symbol.for('undici.error.UND_ERR_CONNECT_TIMEOUT');
const UNDICI_ERROR = Symbol.for('undici.error.UND_ERR');

/**
 * undici's ConnectTimeoutError, made without undici: the same name, code and message,
 * and the markers undici's `instanceof` checks read.
 */
export class ConnectTimeoutError extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT';
  constructor(message = 'Connect Timeout Error') {
    super(message);
    this.name = 'ConnectTimeoutError';
  }
  get [CONNECT_TIMEOUT_ERROR](): boolean {
    return true;
  }
  get [UNDICI_ERROR](): boolean {
    return true;
  }
}

/** The most recently stored sessions, one per server name. */
class SessionCache {
  readonly #max: number;
  readonly #sessions = new Map<string, Buffer>();
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }
  set(key: string, session: Buffer): void {
    if (this.#max === 0) return;
    this.#sessions.delete(key);
    if (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next();
      if (!oldest.done) this.#sessions.delete(oldest.value);
    }
    this.#sessions.set(key, session);
  }
}

/**
 * What undici's buildConnector takes, or lays over every connection, that porter's
 * connector cannot honour: its connections are TCP connections porter makes from ports it
 * chooses (a connection to tunnel through comes with the request, as `httpSocket`).
 */
const REFUSED = unhonoured('localPort', 'socketPath', 'path', 'fd', 'socket');

/** What a request undici passes may not carry: a connection is TCP, not to a local socket. */
const REQUEST_REFUSED = unhonoured('socketPath');

/**
 * Builds a connector for undici on porter's ports. Bad options throw here; a failure of
 * a connection reaches undici through the callback.
 */
export function connector(options: ConnectorOptions = {}): Connector {
  validateObject(options, 'options');
  const {
    porter: porterOption,
    timeout: timeoutOption,
    maxCachedSessions,
    allowH2,
    keepAlive,
    keepAliveInitialDelay,
    session: fixedSession,
    ...rest
  } = options;
  const porter = validatePorter(porterOption);
  // undici's own options; null means its default, as in undici.
  const timeout = timeoutOption == null ? 10_000 : validateTimeout(timeoutOption, 'options.timeout');
  const cached =
    maxCachedSessions == null ? 100 : validateInteger(maxCachedSessions, 'options.maxCachedSessions', 0, 2 ** 32 - 1);
  const sessions = new SessionCache(cached);
  const keepAliveDelay =
    keepAliveInitialDelay == null ? 60_000 : validateNumber(keepAliveInitialDelay, 'options.keepAliveInitialDelay', 0);
  if (keepAlive != null) validateBoolean(keepAlive, 'options.keepAlive');
  if (allowH2 !== undefined) validateBoolean(allowH2, 'options.allowH2');
  // What is laid over every connection, checked as a connect's (TCP) and tls.connect's are.
  const { socketOptions } = checkConnectSettings(rest, REFUSED);
  checkTlsOptions(rest as Record<string, unknown>);
  const alpn = allowH2 === true ? ['http/1.1', 'h2'] : ['http/1.1'];
  // With socketOptions.keepAlive (the connector's or the Porter's) the core sets
  // keep-alive, and the connector's own setKeepAlive() would overwrite it.
  const ownKeepAlive = socketOptions?.keepAlive !== undefined || porter.options?.socketOptions?.keepAlive !== undefined;

  return function connect(request: ConnectorRequest, callback: ConnectorCallback): Socket | undefined {
    validateFunction(callback, 'callback');
    let done = false;
    const finish = (...args: [null, Socket] | [Error, null]): void => {
      if (done) return;
      done = true;
      callback(...args);
    };
    let socket: Socket;
    let target: Target;
    try {
      target = checkRequest(request);
      const { hostname, localAddress: local, httpSocket } = target;
      if (target.https) {
        const name = target.servername || rest.servername || serverName(target.host ?? hostname) || undefined;
        const sessionKey = name || hostname;
        const session = fixedSession ?? sessions.get(sessionKey);
        const tlsOptions: CreateConnectionOptions = {
          highWaterMark: 16_384,
          ...rest,
          servername: name,
          session,
          ALPNProtocols: alpn,
          port: target.port,
          host: hostname,
          porter,
        };
        if (local !== undefined) tlsOptions.localAddress = local;
        if (name === undefined) delete tlsOptions.servername;
        if (session === undefined) delete tlsOptions.session;
        if (httpSocket !== undefined) {
          // A tunnel through a connection that exists already (from porter too, when the
          // proxy connection came through this connector): TLS on top of it.
          const { porter: _p, ...plain } = tlsOptions;
          socket = tls.connect({ ...plain, socket: httpSocket } as tls.ConnectionOptions);
        } else {
          socket = tlsConnection(tlsOptions);
        }
        socket.on('session', (s: Buffer) => sessions.set(sessionKey, s));
      } else {
        if (httpSocket !== undefined) throw invalidArgValue('httpSocket', '[socket]', 'is only for https');
        const { servername: _s, ...tcpOptions } = rest as Record<string, unknown>;
        socket = porter.createConnection({
          highWaterMark: 65_536,
          ...(tcpOptions as object),
          port: target.port,
          host: hostname,
          ...(local === undefined ? {} : { localAddress: local }),
        });
      }
    } catch (err) {
      process.nextTick(() => finish(err as Error, null));
      return undefined;
    }
    if (keepAlive !== false && !ownKeepAlive) socket.setKeepAlive(true, keepAliveDelay);
    socket.setNoDelay(true);
    let timer: LongTimeout | undefined;
    let immediate: NodeJS.Immediate | undefined;
    const clear = (): void => {
      timer?.clear();
      if (immediate !== undefined) clearImmediate(immediate);
    };
    if (timeout > 0) {
      timer = setLongTimeout(() => {
        // One more turn, so that an error the socket reports in this one wins.
        immediate = setImmediate(() => {
          socket.destroy(
            new ConnectTimeoutError(
              `Connect Timeout Error (attempted address: ${target.hostname}:${target.port}, timeout: ${timeout}ms)`,
            ),
          );
        });
      }, timeout);
    }
    socket.once(target.https ? 'secureConnect' : 'connect', () => {
      clear();
      finish(null, socket);
    });
    socket.on('error', (err: Error) => {
      clear();
      finish(err, null);
    });
    socket.once('close', clear);
    return socket;
  };
}

/** A request undici passes, checked, each field read once. */
interface Target {
  https: boolean;
  hostname: string;
  /** The Host value, for SNI. */
  host: string | undefined;
  /** The port, the protocol's default for `''`. */
  port: number;
  servername: string | undefined;
  localAddress: string | undefined;
  httpSocket: Socket | undefined;
}

/**
 * What undici passes to a connector, checked with Node's codes (ERR_INVALID_ARG_TYPE,
 * ERR_SOCKET_BAD_PORT, ERR_INVALID_ARG_VALUE): the connector's errors all have one.
 */
function checkRequest(request: unknown): Target {
  validateObject(request, 'options');
  const { hostname, host, protocol, port, servername, localAddress, socketPath, httpSocket } =
    request as ConnectorRequest;
  refuseOptions({ socketPath }, REQUEST_REFUSED);
  validateString(hostname, 'options.hostname');
  validateString(protocol, 'options.protocol');
  if (host !== undefined && host !== null) validateString(host, 'options.host');
  if (servername !== undefined && servername !== null) validateString(servername, 'options.servername');
  if (localAddress !== undefined && localAddress !== null) validateString(localAddress, 'options.localAddress');
  if (httpSocket !== undefined && httpSocket !== null) validateObject(httpSocket, 'options.httpSocket');
  const https = protocol === 'https:';
  return {
    https,
    hostname,
    host: host ?? undefined,
    // '' (or none): the protocol's default, as undici means it.
    port: port === '' || port === undefined || port === null ? (https ? 443 : 80) : validatePort(port, 'options.port'),
    servername: servername || undefined,
    localAddress: localAddress ?? undefined,
    httpSocket: httpSocket ?? undefined,
  };
}

/** The name to send as SNI for a Host value: none for an IP address (RFC 6066). */
function serverName(host: string): string | undefined {
  let name = host;
  if (name.startsWith('[')) return undefined; // [IPv6]:port
  const colon = name.lastIndexOf(':');
  if (colon > 0 && name.indexOf(':') === colon) name = name.slice(0, colon);
  if (name === '' || isIP(name) !== 0) return undefined;
  return name;
}
