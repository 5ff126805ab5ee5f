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
import type { Dial, DialEvents, Dialed } from './dial.js';
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

/** The `address:port` last made by {@link attempted}. */
const lastAttempted = { address: '', port: 0, text: '' };

/**
 * `address:port`, as net records an address tried: the same string as the last one made
 * when it is the same destination, so that the sockets of one destination share one
 * rather than keep a concatenation each (about 65 bytes per socket).
 */
function attempted(address: string, port: number): string {
  if (lastAttempted.address !== address || lastAttempted.port !== port) {
    lastAttempted.address = address;
    lastAttempted.port = port;
    lastAttempted.text = `${address}:${port}`;
  }
  return lastAttempted.text;
}

/** A porter socket's events, as its connect reports them (PorterSocket's). */
interface DialListener {
  readonly destroyed: boolean;
  emit(event: string, ...args: unknown[]): boolean;
  autoSelectFamilyAttemptedAddresses?: string[];
}

/**
 * A socket's connect while it runs: where it goes (the checked options), its deadline and
 * its cancellation, and the methods that turn what the connect reports into the socket's
 * events (one object per connect, not a closure per event).
 */
class SocketDial implements DialEvents {
  /** The options checked: where the connect goes, and what is applied once connected. */
  readonly target: CheckedConnect;
  /** Milliseconds for the connect, from porter's own packages (see kConnectDeadline). */
  readonly deadline: number | undefined;
  readonly signal: Cancellation;
  readonly #socket: DialListener;

  constructor(socket: DialListener, target: CheckedConnect, signal: Cancellation, deadline: number | undefined) {
    this.target = target;
    this.deadline = deadline;
    this.signal = signal;
    this.#socket = socket;
  }

  onLookup(err: Error | null, address: string | undefined, family: number | undefined, host: string): void {
    const socket = this.#socket;
    if (!socket.destroyed) socket.emit('lookup', err, address, family, host);
  }

  onAttempt(address: string, port: number, family: number): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    // The addresses tried, as `address:port`, as net records them (an array of one at
    // first, rather than the 17 slots a first push() makes room for).
    const tried = attempted(address, port);
    if (socket.autoSelectFamilyAttemptedAddresses === undefined) socket.autoSelectFamilyAttemptedAddresses = [tried];
    else socket.autoSelectFamilyAttemptedAddresses.push(tried);
    socket.emit('connectionAttempt', address, port, family);
  }

  onAttemptFailed(address: string, port: number, family: number, error: Error): void {
    const socket = this.#socket;
    if (!socket.destroyed) socket.emit('connectionAttemptFailed', address, port, family, error);
  }

  onAttemptTimeout(address: string, port: number, family: number): void {
    const socket = this.#socket;
    if (!socket.destroyed) socket.emit('connectionAttemptTimeout', address, port, family);
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
  /**
   * The connect in flight, if any: its cancellation (aborting it gives the port back) and
   * where it connects to, as its options named it (to recognise a second connect()). The
   * socket's only field of its own: what it needs only while connecting lives in the
   * request, not in every open socket.
   */
  #connecting: SocketDial | undefined;

  constructor(options: Record<string, unknown>, checked: CheckedConnect) {
    // The handle Node would make for a connect, without a descriptor until porter has
    // one; `manualStart` keeps the constructor from reading from it before that (Node's
    // own TLS and tty sockets use it the same way).
    super(socketOptions(options, checked));
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
    const target = checkConnectOptions(options);
    // open() started this socket's connect before anyone could call this: this is a second one.
    const inFlight = this.#connecting?.target;
    if (this.connecting && inFlight?.host === target.host && inFlight.port === target.port) {
      if (listener !== undefined) this.once('connect', listener);
      return this;
    }
    throw this.connecting
      ? new PorterError('EALREADY', `connect EALREADY ${target.host}:${target.port}: this socket is connecting`)
      : new PorterError('ERR_SOCKET_CLOSED', 'Socket is closed: a socket from porter connects once');
  }

  /**
   * net.createConnection: a socket on `dial`, connecting. Bad options throw before
   * anything is made.
   */
  static open(dial: Dial, args: unknown[]): PorterSocket {
    const [options, listener] = normalizeArgs(args);
    const checked = checkConnectOptions(options);
    const socket = new PorterSocket(options, checked);
    if (clientSocketChannel.hasSubscribers) clientSocketChannel.publish({ socket });
    // `timeout` is the idle timeout here, as in net.
    const idle = idleTimeout(checked.timeout);
    if (idle > 0) socket.setTimeout(idle);
    socket.#start(dial, options, checked, listener);
    return socket;
  }

  #start(
    dial: Dial,
    options: Record<string, unknown>,
    target: CheckedConnect,
    listener: (() => void) | undefined,
  ): void {
    if (listener !== undefined) this.once('connect', listener);
    if (this.destroyed) return; // destroyed before it started (an aborted signal, say)
    const self = this as unknown as SocketInternals;
    self.connecting = true;
    self._unrefTimer();
    // The connect's deadline, from porter's own packages; `timeout` is the idle timeout.
    const deadline = options[kConnectDeadline as unknown as string] as number | undefined;
    const request = new SocketDial(this, target, new Cancellation(), deadline);
    this.#connecting = request;
    // Never synchronously: listeners are added after createConnection returns.
    process.nextTick(PorterSocket.#begin, this, request, dial);
  }

  /** Starts porter's connect, unless the socket was destroyed meanwhile. */
  static #begin(socket: PorterSocket, request: SocketDial, dial: Dial): void {
    if (request.signal.aborted) return;
    dial(request.target, request.deadline, request.signal, request).then(
      (dialed) => socket.#connected(dialed, request.target),
      (err: Error) => socket.#failed(err),
    );
  }

  /**
   * The connect is over: nothing left to cancel, and no destination to compare a second
   * connect() with (the socket no longer holds the checked options while it lives).
   */
  #settled(): void {
    this.#connecting = undefined;
  }

  #connected(dialed: Dialed, { noDelay, keepAlive, keepAliveInitialDelay }: CheckedConnect): void {
    const { fd, lease } = dialed;
    this.#settled();
    const self = this as unknown as SocketInternals;
    const handle = self._handle;
    if (this.destroyed || handle === null) {
      // Destroyed while the connect finished: this side closes a connected socket.
      closeSync(fd);
      lease.adopt(fd);
      lease.releaseAs(true);
      return;
    }
    const errno = handle.open(fd);
    if (errno !== 0) {
      closeSync(fd);
      lease.adopt(fd);
      lease.releaseAs(true);
      this.destroy(uvError(errno, 'open'));
      return;
    }
    lease.adopt(fd);
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
    this.#settled();
    if (this.destroyed) return; // the destroy aborted it: nothing to report
    this.destroy(err);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const request = this.#connecting;
    if (request !== undefined) {
      // Cancels the connect in flight; the core gives its port back (into aging when a
      // SYN may have left).
      this.#connecting = undefined;
      request.signal.abort(err ?? new AbortError('the socket was destroyed while connecting'));
    }
    super._destroy(err, callback);
  }
}

/** net.Socket's options a porter socket takes as they were given. */
const STREAM_OPTIONS = ['onread', 'highWaterMark', 'readableHighWaterMark', 'writableHighWaterMark'] as const;

/**
 * The constructor options of a connecting porter socket: on a new TCP handle, not reading
 * before it has a descriptor, with net's stream options as given (each read once).
 */
function socketOptions(
  options: Record<string, unknown>,
  checked: CheckedConnect,
): ConstructorParameters<typeof Socket>[0] {
  const out: Record<string, unknown> = {
    handle: tcpHandle(),
    manualStart: true,
    allowHalfOpen: checked.allowHalfOpen,
    signal: checked.signal,
  };
  for (const key of STREAM_OPTIONS) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
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
