// @ts-check
/**
 * The server side of startServers() (servers.mjs), in a child process of its own: listens
 * on `count` ports the kernel picks, or on `ports` (TCP, or TLS with `tls`), prints one JSON line
 * { ports }, then serves in its mode (see servers.mjs). To each line `count` on its stdin
 * it answers a JSON line { accepted, open }: the connections accepted so far and those
 * open now. Exits when its stdin closes (the parent went away) or, in mode 'no-accept',
 * once `lifetimeMs` has passed.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import tls from 'node:tls';

/** @type {import('./servers.mjs').ChildConfig} */
const config = JSON.parse(process.argv[2] ?? '{}');
const { mode, host, count, backlog, lifetimeMs } = config;
let accepted = 0;
let open = 0;

/** @param {net.Socket} socket */
function onConnection(socket) {
  accepted++;
  open++;
  socket.on('error', () => {});
  socket.on('close', () => {
    open--;
  });
  if (mode === 'echo') socket.pipe(socket);
  else if (mode === 'close-first') socket.end();
  else if (mode === 'reset-first') socket.once('data', () => socket.resetAndDestroy());
}

/** @param {string} message */
function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(3);
}

/** @returns {net.Server} */
function createServer() {
  if (config.tls === undefined) return net.createServer(onConnection);
  const server = tls.createServer(
    { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) },
    onConnection,
  );
  server.on('tlsClientError', () => {});
  return server;
}

const ports = [];
for (let i = 0; i < count; i++) {
  const server = createServer();
  server.on('error', (e) => fail(String(e)));
  await new Promise((resolve) =>
    server.listen({ host, port: config.ports[i] ?? 0, backlog }, () => resolve(undefined)),
  );
  ports.push(/** @type {net.AddressInfo} */ (server.address()).port);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'count') process.stdout.write(`${JSON.stringify({ accepted, open })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
// Written at once (stdout is a pipe): in mode 'no-accept' the loop blocks right after.
process.stdout.write(`${JSON.stringify({ ports })}\n`);
if (mode === 'no-accept') {
  // Block the event loop: nothing is ever accepted, and nothing else runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, lifetimeMs);
  process.exit(0);
}
