/**
 * createConnection(): `tls.connect`'s contract on porter's ports. It returns a
 * tls.TLSSocket at once: the TCP socket comes from `@porter/core`'s createConnection
 * (a net.Socket that is still connecting, on a TCP handle that gets porter's descriptor
 * when the connect is over), and Node's own `tls.connect({ socket })` wraps it, exactly
 * as `tls.connect` wraps the socket it makes itself: the TLS layer sits on the TCP
 * handle in C++, the handshake starts on 'connect', and errors and closes of the TCP
 * socket reach the TLS socket. The port's lease moves to the TLS socket at 'connect'.
 */
import type { NetConnectOpts } from 'node:net';
import type * as tls from 'node:tls';
import { idleTimeout } from '@porter/core/internal';
import { type ConnectOptions, openTls, prepare } from './connect.js';

/**
 * The options of {@link createConnection}: those of `tls.connect` (and its TCP options),
 * with `timeout` the socket's idle timeout as in `tls.connect`, plus `porter`.
 */
export interface CreateConnectionOptions extends ConnectOptions {
  /** The TLS socket's buffer size, as tls.connect takes it. */
  highWaterMark?: number | undefined;
}

/** `(options[, cb])`, `(port[, host][, options][, cb])`, as tls.connect takes them. */
function normalizeArgs(args: unknown[]): [ConnectOptions, (() => void) | undefined] {
  const last = args[args.length - 1];
  const listener = typeof last === 'function' ? (last as () => void) : undefined;
  const rest = listener === undefined ? args : args.slice(0, -1);
  const [first, second, third] = rest;
  if (first !== null && typeof first === 'object') return [first as ConnectOptions, listener];
  const options: Record<string, unknown> = {};
  let extra: unknown;
  if (typeof second === 'string') {
    options.host = second;
    extra = third;
  } else {
    extra = second;
  }
  if (extra !== null && typeof extra === 'object') Object.assign(options, extra);
  if (first !== undefined) options.port = first;
  return [options as unknown as ConnectOptions, listener];
}

/**
 * Node's `tls.connect` on porter's ports: returns a `tls.TLSSocket` at once, which emits
 * 'secureConnect' (then `secureConnectListener` runs) or 'error' as Node's does. Takes
 * tls.connect's options and `porter` (default: the default Porter, `defaultPorter()`);
 * `timeout` is the idle timeout (`socket.setTimeout`), as in tls.connect; `signal`
 * destroys the socket when it aborts. Bad options throw synchronously. The lease
 * ({@link leaseOf}) follows the TLS socket from 'connect' on.
 */
export function createConnection(
  options: CreateConnectionOptions | NetConnectOpts,
  secureConnectListener?: () => void,
): tls.TLSSocket;
export function createConnection(port: number | string, secureConnectListener?: () => void): tls.TLSSocket;
export function createConnection(
  port: number | string,
  host?: string,
  options?: Omit<CreateConnectionOptions, 'port' | 'host'>,
  secureConnectListener?: () => void,
): tls.TLSSocket;
export function createConnection(
  port: number | string,
  options?: Omit<CreateConnectionOptions, 'port'>,
  secureConnectListener?: () => void,
): tls.TLSSocket;
export function createConnection(...args: unknown[]): tls.TLSSocket {
  const [options, listener] = normalizeArgs(args);
  const prepared = prepare(options);
  const { timeout, signal } = prepared.checked;
  // The idle timeout and the signal belong to the TLS socket, as with tls.connect.
  if (signal !== undefined) (prepared.tls as tls.ConnectionOptions & { signal?: AbortSignal }).signal = signal;
  const { socket } = openTls(prepared, listener);
  const idle = idleTimeout(timeout);
  if (idle > 0) socket.setTimeout(idle);
  return socket;
}
