/**
 * Ports of a range taken by someone other than porter, so that porter's attempts on them
 * collide for real: a listener on the port (porter's bind fails EADDRINUSE), or a
 * connection from the port to the destination (porter's connect fails EADDRNOTAVAIL, the
 * 4-tuple being in use).
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { Porter, type PorterOptions } from '@porter/core';
import type { ExecutionContext } from 'ava';
import { findFreePortBlock } from './ports.js';
import { startServers } from './servers.mjs';
import { closeAtTeardown } from './sockets.js';

export type Holder = 'listener' | '4-tuple';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '0.0.0.0', port, exclusive: true }, () => resolve(server));
  });
}

/** A connection to `remotePort` from 127.0.0.1:`localPort` (libuv binds it with SO_REUSEADDR). */
function connectFrom(localPort: number, remotePort: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: remotePort, localAddress: '127.0.0.1', localPort });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * An echo server, a range of `size` ports of which the first `held` are taken by someone
 * else than porter (a listener on the port: porter's bind fails EADDRINUSE; or a
 * connection from the port to the echo server: porter's connect fails EADDRNOTAVAIL), and
 * a Porter on that range. Everything is closed at teardown.
 */
export async function collide(t: ExecutionContext, holder: Holder, size: number, held: number, options: PorterOptions) {
  const servers = await startServers();
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let attempt = 0; ; attempt++) {
    const [first, last] = await findFreePortBlock(size);
    const taken: number[] = [];
    try {
      for (let p = first; p < first + held; p++) {
        if (holder === 'listener') {
          const server = await listen(p);
          t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
        } else {
          sockets.push(await connectFrom(p, port));
        }
        taken.push(p);
      }
    } catch (e) {
      // Taken meanwhile by someone else: another block.
      if (attempt < 10) continue;
      throw e;
    }
    const porter = new Porter({ agingMs: 60_000, ...options, portRange: [first, last] });
    return { porter, port, first, last, taken, sockets };
  }
}
