// @ts-check
/**
 * The server side of startServers() and startNamedServers() (servers.mjs), in a child
 * process of its own: one listener per entry of `listeners`, each on its `port` or one
 * the kernel picks, or on the listening socket it was given as a descriptor (its second
 * argument: SO_REUSEPORT, see servers.mjs) (TCP, or TLS with `tls`) and in its own mode
 * (see servers.mjs); prints one JSON
 * line { ports }, in the order of `listeners`, then serves. To each line `count` on its
 * stdin it answers a JSON line { accepted, open }: the connections accepted so far and
 * those open now, over every listener. Exits when its stdin closes (the parent went
 * away) or, with a listener in mode 'no-accept', once `lifetimeMs` has passed.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import tls from 'node:tls';

/** @type {import('./servers.mjs').ChildConfig} */
const config = JSON.parse(process.argv[2] ?? '{}');
const { listeners, host, backlog, lifetimeMs } = config;
/** A listening socket made for this process (SO_REUSEPORT: see servers.mjs), if any. */
const fd = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
let accepted = 0;
let open = 0;

/** What a listener in `mode` does with a connection. @param {import('./servers.mjs').ServerMode} mode */
function serving(mode) {
  /** @param {net.Socket} socket */
  return (socket) => {
    accepted++;
    open++;
    socket.on('error', () => {});
    socket.on('close', () => {
      open--;
    });
    if (mode === 'echo') socket.pipe(socket);
    else if (mode === 'close-first') socket.end();
    else if (mode === 'reset-first') socket.once('data', () => socket.resetAndDestroy());
    else if (mode === 'close-on-data') socket.once('data', () => socket.destroy());
    else if (mode === 'silent') socket.resume();
  };
}

/** @param {string} message */
function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(3);
}

/** @param {import('./servers.mjs').Listener} listener @returns {net.Server} */
function createServer(listener) {
  if (listener.tls === undefined) return net.createServer(serving(listener.mode));
  const server = tls.createServer(
    { key: readFileSync(listener.tls.key), cert: readFileSync(listener.tls.cert) },
    serving(listener.mode),
  );
  server.on('tlsClientError', () => {});
  return server;
}

const ports = [];
for (const listener of listeners) {
  const server = createServer(listener);
  server.on('error', (e) => fail(String(e)));
  const where = fd === undefined ? { host, port: listener.port ?? 0, backlog } : { fd, backlog };
  await new Promise((resolve) => server.listen(where, () => resolve(undefined)));
  ports.push(/** @type {net.AddressInfo} */ (server.address()).port);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'count') process.stdout.write(`${JSON.stringify({ accepted, open })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
// Written at once (stdout is a pipe): in mode 'no-accept' the loop blocks right after.
process.stdout.write(`${JSON.stringify({ ports })}\n`);
if (listeners.some((l) => l.mode === 'no-accept')) {
  // Block the event loop: nothing is ever accepted, and nothing else runs.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, lifetimeMs);
  process.exit(0);
}
