/**
 * Servers in the test's own process, for light TLS tests: Node's TLS server (echoes, or
 * hands each socket to the test) and a TCP server that accepts and never sends a byte
 * (a TLS handshake against it can only time out). Both on a port the kernel chose.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer as netCreateServer, type Server, type Socket } from 'node:net';
import { type TLSSocket, type TlsOptions, createServer as tlsCreateServer } from 'node:tls';

export interface Running {
  port: number;
  close(): Promise<void>;
}

/** Listens on `host`, port 0; resolves to the port. */
async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes `server` and destroys whatever it still has open. */
function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

export interface TlsServer extends Running {
  server: Server;
  /** Every TLS socket accepted so far, in order. */
  accepted: TLSSocket[];
  /** Resets the TCP connection under `socket` (one of `accepted`): RST, no TLS alert. */
  reset(socket: TLSSocket): void;
}

/**
 * Node's TLS server in this process. Echoes what it receives unless `onSecure` takes
 * the socket over.
 */
export async function startTlsServer(
  options: TlsOptions,
  onSecure?: (socket: TLSSocket) => void,
  host = '127.0.0.1',
): Promise<TlsServer> {
  const sockets = new Set<Socket>();
  const accepted: TLSSocket[] = [];
  const server = tlsCreateServer(options, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    if (onSecure) onSecure(socket);
    else socket.pipe(socket);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server, host);
  const reset = (socket: TLSSocket): void => {
    const raw = [...sockets].find((r) => r.remotePort === socket.remotePort);
    if (raw === undefined) throw new Error(`no connection from port ${socket.remotePort}`);
    raw.resetAndDestroy();
  };
  return { port, server, accepted, reset, close: closer(server, sockets) };
}

/** A TCP server that accepts connections and never sends a byte. */
export async function startSilentServer(): Promise<Running & { connections: () => number }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = netCreateServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  return { port, connections: () => count, close: closer(server, sockets) };
}
