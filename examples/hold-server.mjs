// A TCP server for the demo, in its own process: listens on two loopback ports (two
// destinations), accepts and holds every connection, and prints its ports as JSON.
import net from 'node:net';

const sockets = new Set();
const listen = () =>
  new Promise((resolve) => {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
      s.resume();
    });
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve(server.address().port));
  });

const ports = [await listen(), await listen()];
process.stdout.write(`${JSON.stringify({ ports })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
