/**
 * The server side of the connect benchmarks, run in a child process of its own so that
 * its work does not share the event loop of the client being measured. Listens on
 * `count` ports (port 0: the kernel picks them) with a deep backlog; TCP or TLS.
 *
 *   mode 'close': ends every connection as soon as it is accepted (this side closes
 *                 first, so the client side never sits in TIME_WAIT)
 *   mode 'keep':  keeps every connection open until the client goes away
 *
 * Reports { ports } over IPC once listening; answers { cmd: 'count' } with the number of
 * connections accepted and open; exits on { cmd: 'exit' } or when the parent goes.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const config = JSON.parse(process.argv[2] ?? '{}');
const host = config.host ?? '127.0.0.1';
const count = config.count ?? 1;
const mode = config.mode ?? 'close';
const backlog = config.backlog ?? 4096;
let accepted = 0;
let open = 0;

function onSocket(socket) {
  accepted++;
  open++;
  socket.on('error', () => {});
  socket.on('close', () => {
    open--;
  });
  if (mode === 'close') socket.end();
}

function createServer() {
  if (config.tls) {
    const server = tls.createServer({ key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) });
    server.on('secureConnection', onSocket);
    server.on('tlsClientError', () => {});
    return server;
  }
  return net.createServer(onSocket);
}

const servers = [];
const ports = [];
for (let i = 0; i < count; i++) {
  const server = createServer();
  server.on('error', (err) => {
    process.send?.({ error: err.message });
    process.exit(1);
  });
  servers.push(server);
  await new Promise((resolve) => server.listen({ host, port: 0, backlog }, resolve));
  ports.push(server.address().port);
}

process.on('message', (msg) => {
  if (msg?.cmd === 'count') process.send?.({ accepted, open });
  else if (msg?.cmd === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ports });
