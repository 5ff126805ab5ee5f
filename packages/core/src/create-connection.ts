/**
 * createConnection(): `net.createConnection`'s contract on porter's ports. It returns a
 * net.Socket at once, for socket factories that must answer synchronously (mqtt.js's
 * stream builder, pg's `stream`, http.Agent#createConnection, ws).
 *
 * The socket is made the way Node makes a socket that is still connecting: on a TCP
 * handle that has no descriptor yet (`net.connect` makes `new TCP()` and lets libuv
 * create the descriptor at connect time). Porter's connect runs meanwhile (resolution,
 * port choice, bind, connect in the core); when it gives the connected descriptor, the
 * descriptor is opened on that handle (`uv_tcp_open`) and the socket finishes as Node's
 * `afterConnect` does: 'connect', then 'ready', then reading starts. Until then the socket
 * is in the very state Node's own is during a connect (`connecting`, `pending`,
 * `readyState` 'opening', writes and `end()` buffered until 'connect'), so everything
 * built on that state (tls.connect({ socket }), http's ClientRequest, stream.pipeline)
 * works unchanged. docs/ARCHITECTURE.md, "createConnection", says why this design.
 */
import { channel } from 'node:diagnostics_channel';
import { closeSync } from 'node:fs';
import { type NetConnectOpts, Socket, type TcpNetConnectOpts } from 'node:net';
import { type CheckedConnect, checkConnectOptions } from './connect-options.js';
import { type DialSignal, idleTimeout } from './deadline.js';
import type { Dial, Dialed, DialRequest } from './dial.js';
import { AbortError, PorterError, uvError } from './errors.js';
import { type TcpHandle, tcpHandle } from './socket.js';
import type { SocketOptions } from './types.js';

/**
 * A socket's own cancellation of its connect: a DialSignal without EventTarget, whose
 * listeners and bookkeeping cost more than the rest of a loopback connect's JavaScript.
 */
class Cancellation implements DialSignal {
  aborted = false;
  reason: unknown;
  #listener: (() => void) | undefined;
  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listener = listener;
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = undefined;
  }
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}

/**
 * The options of `net.createConnection` that make sense here: `host`, `port`,
 * `localAddress`, `family`, `hints`, `lookup`, `noDelay`, `keepAlive`,
 * `keepAliveInitialDelay`, `allowHalfOpen`, `timeout` (the idle timeout, as in net),
 * `signal`, `onread`, `highWaterMark`, and porter's `socketOptions`. `localPort` is
 * porter's to choose; `path` and `fd` are not TCP connects porter can make: each is
 * refused with ERR_INVALID_ARG_VALUE.
 */
export interface CreateConnectionOptions extends Omit<TcpNetConnectOpts, 'port'> {
  /** The remote port; a numeric string is read as a number, as net does. */
  port: number | string;
  /** Socket options for this connect, over the Porter's field by field (see SocketOptions). */
  socketOptions?: SocketOptions | undefined;
  /** The socket's buffer sizes, as net.Socket takes them. */
  highWaterMark?: number | undefined;
  readableHighWaterMark?: number | undefined;
  writableHighWaterMark?: number | undefined;
}

/**
 * What createConnection's first argument may be typed as: porter's options, or any of
 * net's (so that it fits where `typeof net.createConnection` is expected, ws's
 * `createConnection` option for one); a `path` is refused at run time.
 */
export type CreateConnectionArg = CreateConnectionOptions | NetConnectOpts;

/** net.Socket's members porter's sockets use that @types/node does not declare. */
interface SocketInternals {
  connecting: boolean;
  _handle: TcpHandle | null;
  _sockname: object | null;
  _unrefTimer(): void;
}

/**
 * An option for porter's own packages (through @porter/core/internal): milliseconds for
 * the connect, as `porter.connect`'s `timeout`, so that a connect over time fails in the
 * core with its port and source address named. @porter/tls's connect() uses it.
 */
export const kConnectDeadline = Symbol('porter.connectDeadline');

/** Published with every socket made, as net.connect does (diagnostics_channel). */
const clientSocketChannel = channel('net.client.socket');

/**
 * A net.Socket whose connects go through a Porter. Internal: users get it from
 * `createConnection`, typed as net.Socket.
 */
class PorterSocket extends Socket {
  readonly #dial: Dial;
  /** Set while porter's connect is in flight; aborting it gives the port back. */
  #pending: Cancellation | undefined;
  /** Where it connects to, as its options named it (to recognise a second connect()). */
  #target: CheckedConnect | undefined;
  #started = false;

  constructor(dial: Dial, options: Record<string, unknown>, checked: CheckedConnect) {
    // The handle Node would make for a connect, without a descriptor until porter has
    // one; `manualStart` keeps the constructor from reading from it before that (Node's
    // own TLS and tty sockets use it the same way).
    super({
      handle: tcpHandle(),
      manualStart: true,
      allowHalfOpen: checked.allowHalfOpen,
      signal: checked.signal,
      ...pick(options, ['onread', 'highWaterMark', 'readableHighWaterMark', 'writableHighWaterMark']),
    } as ConstructorParameters<typeof Socket>[0]);
    this.#dial = dial;
  }

  /**
   * `socket.connect()` as net.Socket's, through porter. pg calls `connect(port, host)`
   * on the socket its `stream` factory returned: while this socket is connecting to that
   * same destination, the call only adds `connectListener`. Any other second connect is
   * refused as Node's would fail (EALREADY while connecting, ERR_SOCKET_CLOSED once
   * closed: a porter socket is not reused).
   */
  override connect(...args: unknown[]): this {
    const [options, listener] = normalizeArgs(args);
    return this.#start(options, checkConnectOptions(options), listener);
  }

  /**
   * net.createConnection: a socket on `dial`, connecting. Bad options throw before
   * anything is made.
   */
  static open(dial: Dial, args: unknown[]): PorterSocket {
    const [options, listener] = normalizeArgs(args);
    const checked = checkConnectOptions(options);
    const socket = new PorterSocket(dial, options, checked);
    if (clientSocketChannel.hasSubscribers) clientSocketChannel.publish({ socket });
    // `timeout` is the idle timeout here, as in net.
    const idle = idleTimeout(checked.timeout);
    if (idle > 0) socket.setTimeout(idle);
    return socket.#start(options, checked, listener);
  }

  #start(options: Record<string, unknown>, target: CheckedConnect, listener: (() => void) | undefined): this {
    if (this.#started) {
      if (this.connecting && this.#target?.host === target.host && this.#target.port === target.port) {
        if (listener !== undefined) this.once('connect', listener);
        return this;
      }
      throw this.connecting
        ? new PorterError('EALREADY', `connect EALREADY ${target.host}:${target.port}: this socket is connecting`)
        : new PorterError('ERR_SOCKET_CLOSED', 'Socket is closed: a socket from porter connects once');
    }
    this.#started = true;
    if (listener !== undefined) this.once('connect', listener);
    if (this.destroyed) return this; // destroyed before it started (an aborted signal, say)
    this.#target = target;
    const self = this as unknown as SocketInternals;
    self.connecting = true;
    self._unrefTimer();
    const controller = new Cancellation();
    this.#pending = controller;
    const request: DialRequest = {
      ...target,
      signal: controller,
      // The connect's deadline, from porter's own packages; `timeout` is the idle timeout.
      timeout: options[kConnectDeadline as unknown as string] as number | undefined,
      onLookup: (err, address, family, host) => {
        if (!this.destroyed) this.emit('lookup', err, address, family, host);
      },
      onAttempt: (address, port, family) => {
        if (this.destroyed) return;
        // The addresses tried, as `address:port`, as net records them.
        const self = this as unknown as { autoSelectFamilyAttemptedAddresses?: string[] };
        self.autoSelectFamilyAttemptedAddresses ??= [];
        self.autoSelectFamilyAttemptedAddresses.push(`${address}:${port}`);
        this.emit('connectionAttempt', address, port, family);
      },
      onAttemptFailed: (address, port, family, error) => {
        if (!this.destroyed) this.emit('connectionAttemptFailed', address, port, family, error);
      },
      onAttemptTimeout: (address, port, family) => {
        if (!this.destroyed) this.emit('connectionAttemptTimeout', address, port, family);
      },
    };
    // Never synchronously: listeners are added after createConnection returns.
    process.nextTick(() => {
      if (controller.aborted) return;
      this.#dial(request).then(
        (dialed) => this.#connected(dialed, target),
        (err: Error) => this.#failed(err),
      );
    });
    return this;
  }

  #connected({ fd, lease, adopt }: Dialed, { noDelay, keepAlive, keepAliveInitialDelay }: CheckedConnect): void {
    this.#pending = undefined;
    const self = this as unknown as SocketInternals;
    const handle = self._handle;
    if (this.destroyed || handle === null) {
      // Destroyed while the connect finished: this side closes a connected socket.
      closeSync(fd);
      adopt();
      lease.releaseAs(true);
      return;
    }
    const errno = handle.open(fd);
    if (errno !== 0) {
      closeSync(fd);
      adopt();
      lease.releaseAs(true);
      this.destroy(uvError(errno, 'open'));
      return;
    }
    adopt();
    lease.follow(this);
    // What Node's afterConnect does once a connect succeeded.
    self.connecting = false;
    self._sockname = null;
    self._unrefTimer();
    if (noDelay) this.setNoDelay(true);
    // socketOptions.keepAlive, which the core set, wins over net's keepAlive options.
    if (keepAlive && !lease.keepAliveFromSocketOptions) this.setKeepAlive(true, keepAliveInitialDelay);
    this.emit('connect');
    this.emit('ready');
    if (!this.isPaused()) this.read(0);
  }

  #failed(err: Error): void {
    this.#pending = undefined;
    if (this.destroyed) return; // the destroy aborted it: nothing to report
    this.destroy(err);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const pending = this.#pending;
    if (pending !== undefined) {
      // Cancels the connect in flight; the core gives its port back (into aging when a
      // SYN may have left).
      this.#pending = undefined;
      pending.abort(err ?? new AbortError('the socket was destroyed while connecting'));
    }
    super._destroy(err, callback);
  }
}

function pick(source: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (source[k] !== undefined) out[k] = source[k];
  return out;
}

/** `(options[, cb])` or `(port[, host][, cb])`, as net.connect takes them. */
function normalizeArgs(args: unknown[]): [Record<string, unknown>, (() => void) | undefined] {
  const last = args[args.length - 1];
  const listener = typeof last === 'function' ? (last as () => void) : undefined;
  const first = args[0];
  let options: Record<string, unknown>;
  if (first !== null && typeof first === 'object') {
    options = first as Record<string, unknown>;
  } else if (typeof first === 'string' && !/^\s*[0-9]+\s*$/.test(first)) {
    // net reads a string that is not a number as the path of a local socket.
    options = { path: first };
  } else {
    options = { port: first };
    if (typeof args[1] === 'string') options.host = args[1];
  }
  return [options, listener];
}

/**
 * Makes a socket on `dial` and connects it: net.createConnection, for `Porter`'s method
 * and the module-level function.
 */
export function createConnectionOn(dial: Dial, args: unknown[]): Socket {
  return PorterSocket.open(dial, args);
}
