/**
 * The demo's server, in a process of its own: listens on two loopback ports (two
 * destinations), accepts and holds every connection, prints its ports as one JSON line,
 * and exits when its stdin closes.
 */
import { createServer, type Socket } from 'node:net';

const sockets = new Set<Socket>();
const listen = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
      s.resume();
    });
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });

const ports = [await listen(), await listen()];
process.stdout.write(`${JSON.stringify({ ports })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
