/**
 * Wrapping a connected descriptor in Node's own net.Socket.
 *
 * `new Socket({ fd })` first asks libuv what the descriptor is (fstat, isatty,
 * getsockopt(SO_TYPE), getsockname: four system calls) and then makes the TCP handle
 * that porter already knows it needs: a measurable share of a loopback connect's CPU
 * time (docs/ARCHITECTURE.md, "What a loopback connect costs"). So when Node exposes its
 * TCP handle class (`process.binding('tcp_wrap')`, which Node keeps for compatibility
 * and which is what `new Socket({ fd })` itself uses), porter makes the handle, opens the
 * descriptor on it and gives it to `new Socket({ handle })`: the same socket, the same
 * handle type, without the probing. Anywhere that is not available (another runtime, a
 * future Node without it) or would warn (`--pending-deprecation` makes every
 * process.binding() call print DEP0111), porter uses `new Socket({ fd })`.
 */
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { uvError } from './errors.js';

/** The parts of Node's TCP handle (tcp_wrap's TCP) porter uses. */
export interface TcpHandle {
  open(fd: number): number;
  close(): void;
}
interface TcpBinding {
  TCP: new (type: number) => TcpHandle;
  constants: { SOCKET: number };
}

/** Whether Node would print DEP0111 for process.binding(). */
function pendingDeprecation(): boolean {
  const flag = '--pending-deprecation';
  return (
    process.execArgv.includes(flag) ||
    (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(flag) ||
    process.env.NODE_PENDING_DEPRECATION === '1'
  );
}

function loadTcpBinding(): TcpBinding | undefined {
  if (process.env.PORTER_SOCKET_FROM_FD === '1' || pendingDeprecation()) return undefined;
  const binding = (process as { binding?: (name: string) => unknown }).binding;
  if (typeof binding !== 'function') return undefined;
  try {
    const tcp = binding.call(process, 'tcp_wrap') as Partial<TcpBinding> | undefined;
    if (
      typeof tcp?.TCP === 'function' &&
      typeof tcp.TCP.prototype?.open === 'function' &&
      typeof tcp.constants?.SOCKET === 'number'
    ) {
      return tcp as TcpBinding;
    }
  } catch {
    // Not offered here: fall back to new Socket({ fd }).
  }
  return undefined;
}

const tcpBinding = loadTcpBinding();

/** How porter makes its sockets in this process: 'handle' (the fast path) or 'fd'. */
export const socketPath: 'handle' | 'fd' = tcpBinding === undefined ? 'fd' : 'handle';

/**
 * A net.Socket for `fd`, a connected TCP descriptor, which this takes over: if it throws
 * (as `new Socket({ fd })` does when a descriptor cannot be opened), the descriptor has
 * been closed.
 */
export function socketFor(fd: number, allowHalfOpen: boolean): Socket {
  if (tcpBinding === undefined) {
    try {
      return new Socket({ fd, readable: true, writable: true, allowHalfOpen });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
  const handle = new tcpBinding.TCP(tcpBinding.constants.SOCKET);
  const errno = handle.open(fd);
  if (errno !== 0) {
    // The handle never took the descriptor.
    handle.close();
    closeSync(fd);
    throw uvError(errno, 'open');
  }
  try {
    // `handle` is an undocumented option of net.Socket (Node's cluster and child_process
    // use it); the socket owns the handle and its descriptor from here on.
    return new Socket({ handle, readable: true, writable: true, allowHalfOpen } as SocketOptions);
  } catch (err) {
    handle.close(); // closes the descriptor too
    throw err;
  }
}

type SocketOptions = ConstructorParameters<typeof Socket>[0];

/** tcp_wrap's socket type (constants.SOCKET), where the binding is not read. */
const SOCKET_TYPE = 0;
let handleClass: (new (type: number) => TcpHandle) | undefined;

/**
 * A new TCP handle without a descriptor: what `net.connect` makes before it connects.
 * From the binding where porter reads it; elsewhere (`--pending-deprecation`,
 * `PORTER_SOCKET_FROM_FD=1`) the class is taken once from a socket that `net` itself set
 * up for a connect and that is destroyed before the connect could start (the connect
 * runs on the next tick, and only while the socket is still connecting): no packet is
 * sent and no warning printed.
 */
export function tcpHandle(): TcpHandle {
  if (tcpBinding !== undefined) return new tcpBinding.TCP(tcpBinding.constants.SOCKET);
  if (handleClass === undefined) {
    const probe = new Socket() as Socket & { _handle: TcpHandle | null; connecting: boolean };
    probe.connect({ host: '127.0.0.1', port: 9 });
    const handle = probe._handle;
    probe.connecting = false;
    probe.destroy();
    if (handle === null || typeof handle.open !== 'function') {
      throw new Error('porter: no TCP handle class found in this runtime');
    }
    handleClass = handle.constructor as new (type: number) => TcpHandle;
  }
  return new handleClass(SOCKET_TYPE);
}
