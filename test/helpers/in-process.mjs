// @ts-check
/**
 * A server in this very process and an awaited loop of connects to it, as proxies and
 * test harnesses run them: how far the server's accepts fall behind the connects, and
 * how long the loop and its slowest connect took. For the fairness test
 * (test/core/in-process-server.test.ts) and the connect-rate benchmark.
 */
import net from 'node:net';

/**
 * @typedef {object} InProcessServer
 * @property {number} port
 * @property {() => number} accepted Connections accepted so far.
 * @property {() => Promise<void>} close
 */

/**
 * A server on 127.0.0.1 in this process with a listen backlog of `backlog`, that
 * closes every connection as it accepts it.
 * @param {number} backlog
 * @returns {Promise<InProcessServer>}
 */
export async function inProcessServer(backlog) {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    socket.on('error', () => {});
    socket.destroy();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog }, () => resolve(undefined));
  });
  const address = /** @type {net.AddressInfo} */ (server.address());
  return {
    port: address.port,
    accepted: () => accepted,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * @typedef {object} LoopResult
 * @property {number} connects
 * @property {number} elapsedMs
 * @property {number} slowestMs The slowest single connect.
 * @property {number} mostBehind The most connects the server had not accepted yet, read
 *   as each connect settled (0 or 1 when the server keeps up).
 * @property {number} accepted What the server had accepted when the loop ended.
 */

/**
 * `total` connects one after the other (`await connect()` in a loop), each socket
 * destroyed once connected.
 * @param {(port: number) => Promise<net.Socket>} connect
 * @param {InProcessServer} server
 * @param {number} total
 * @returns {Promise<LoopResult>}
 */
export async function awaitedLoop(connect, server, total) {
  let slowestMs = 0;
  let mostBehind = 0;
  const start = performance.now();
  for (let i = 1; i <= total; i++) {
    const before = performance.now();
    const socket = await connect(server.port);
    slowestMs = Math.max(slowestMs, performance.now() - before);
    mostBehind = Math.max(mostBehind, i - server.accepted());
    socket.on('error', () => {});
    socket.destroy();
  }
  return { connects: total, elapsedMs: performance.now() - start, slowestMs, mostBehind, accepted: server.accepted() };
}

/**
 * net.connect to 127.0.0.1:`port`, as a promise of the connected socket.
 * @param {number} port
 * @returns {Promise<net.Socket>}
 */
export function netConnectTo(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
