/**
 * socketOptions through the drop-in paths: createConnection (options read back with
 * getsockopt once connected, lingerZeroOnClose, a refused option as an 'error' event);
 * the http and https Agents, whose options reach every connection and whose keep-alive
 * bookkeeping (Node's keepSocketAlive calls setKeepAlive on every socket it keeps) leaves
 * socketOptions.keepAlive as it was set; and undici's connector, whose own TCP keep-alive
 * gives way to socketOptions.keepAlive.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, get as httpGet, type Agent as NodeAgent, type Server } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Agent as HttpAgent, leaseOf, Porter, type SocketOptions } from '@porter/core';
import { type ConnectorRequest, connector, Agent as HttpsAgent } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { inUse, portState } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { testIf } from '../helpers/requirements.js';
import { porterSocketOptions, sockoptReaderMissing } from '../helpers/sockopts.js';
import { eventually } from '../helpers/wait.js';

let certs: Certs;
test.before(() => {
  certs = makeCerts();
});
test.after.always(() => certs?.cleanup());

const withPerl = testIf(sockoptReaderMissing());

async function web(secure: boolean, t: import('ava').ExecutionContext): Promise<{ server: Server; port: number }> {
  const handler = (_req: unknown, res: import('node:http').ServerResponse): void => {
    res.end('ok');
  };
  const server = secure
    ? createHttpsServer({ cert: certs.server.cert, key: certs.server.key }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, port: (server.address() as AddressInfo).port };
}

async function newPorter(socketOptions?: SocketOptions): Promise<Porter> {
  const [first, last] = await findFreePortBlock(16);
  return new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false, socketOptions });
}

/** The TCP socket porter connected, under a TLS socket (Node keeps it as `_parent`). */
function tcpOf(socket: Socket): Socket {
  const parent = (socket as Socket & { _parent?: Socket })._parent;
  const tcp = parent ?? socket;
  if (tcp.localPort !== leaseOf(socket)?.localPort) throw new Error('not the leased TCP socket');
  return tcp;
}

withPerl(
  'createConnection: socketOptions are on the socket at connect, over net’s keepAlive; lingerZeroOnClose frees the port',
  async (t) => {
    const { port } = await web(false, t);
    const porter = await newPorter({ userTimeoutMs: 5_000 });
    const socket = porter.createConnection({
      host: '127.0.0.1',
      port,
      keepAlive: true,
      keepAliveInitialDelay: 1_000,
      socketOptions: { keepAlive: { idleMs: 23_000 }, lingerZeroOnClose: true },
    });
    await once(socket, 'connect');
    t.like(await porterSocketOptions(socket, 4), {
      userTimeoutMs: 5_000,
      keepAlive: true,
      keepIdle: 23,
      linger: { on: true, seconds: 0 },
    });
    const local = socket.localPort as number;
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    t.deepEqual(inUse(porter), []);
    t.is(portState(porter.snapshot(), '127.0.0.1', port, local), 'free', 'no TIME_WAIT: free at once, not aging');
  },
);

test('createConnection: bad socketOptions throw at the call; a refused one is an error event naming it', async (t) => {
  const { port } = await web(false, t);
  const porter = await newPorter();
  t.throws(() => porter.createConnection({ host: '127.0.0.1', port, socketOptions: { tos: 1 } }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /options\.socketOptions\.tos/,
  });
  const socket = porter.createConnection({ host: '127.0.0.1', port, socketOptions: { congestion: 'no-such' } });
  const [err] = (await once(socket, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
  t.like(err, { code: 'ENOENT', syscall: 'setsockopt', option: 'TCP_CONGESTION' });
  t.deepEqual(inUse(porter), []);
  t.deepEqual(porter.stats().connectErrors, { ENOENT: 1 });
});

/** GETs `/` through `agent`; resolves once the response has ended, to its socket. */
function get(secure: boolean, port: number, agent: NodeAgent): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: '/', agent, ca: certs.ca, servername: 'localhost' };
    const req = (secure ? httpsGet : httpGet)(options, (res) => {
      const socket = res.socket; // (res.socket is null once the response has ended)
      res.resume();
      res.on('end', () => resolve(socket));
    });
    req.on('error', reject);
  });
}

/** The socket is back in the Agent's free list (Node's keepSocketAlive has run on it). */
function isFreeInAgent(agent: NodeAgent, socket: Socket): boolean {
  return Object.values(agent.freeSockets).some((list) => list?.includes(socket));
}

for (const secure of [false, true]) {
  const name = secure ? 'https' : 'http';
  withPerl(`${name} Agent: socketOptions reach the connection and outlive the Agent's keep-alive`, async (t) => {
    const { port } = await web(secure, t);
    const porter = await newPorter();
    const socketOptions = { userTimeoutMs: 6_000, keepAlive: { idleMs: 25_000, intervalMs: 5_000, count: 4 } };
    const Agent = secure ? HttpsAgent : HttpAgent;
    const agent = new Agent({ porter, keepAlive: true, keepAliveMsecs: 1_000, socketOptions } as never);
    const plain = new Agent({ porter, keepAlive: true, keepAliveMsecs: 1_000 } as never);
    t.teardown(() => {
      agent.destroy();
      plain.destroy();
    });
    const socket = await get(secure, port, agent);
    t.true(await eventually(() => isFreeInAgent(agent, socket)), 'kept for reuse');
    t.like(await porterSocketOptions(tcpOf(socket), 4), {
      userTimeoutMs: 6_000,
      keepAlive: true,
      keepIdle: 25,
      keepIntvl: 5,
      keepCnt: 4,
    });
    // The control: without socketOptions.keepAlive, the Agent's keepAliveMsecs applies.
    const other = await get(secure, port, plain);
    t.true(await eventually(() => isFreeInAgent(plain, other)));
    t.like(await porterSocketOptions(tcpOf(other), 4), { keepAlive: true, keepIdle: 1, userTimeoutMs: 0 });
  });
}

/** A connection from a connector, as undici asks for one. */
function viaConnector(connect: ReturnType<typeof connector>, request: ConnectorRequest): Promise<Socket> {
  return new Promise((resolve, reject) => {
    connect(request, (...args) => (args[0] === null ? resolve(args[1]) : reject(args[0])));
  });
}

withPerl('undici connector: socketOptions reach http and https connections; its keep-alive gives way', async (t) => {
  const plain = await web(false, t);
  const secure = await web(true, t);
  const porter = await newPorter();
  const socketOptions = { keepAlive: { idleMs: 27_000 }, congestion: 'reno' };
  const ours = connector({ porter, ca: certs.ca, servername: 'localhost', socketOptions });
  const theirs = connector({ porter, ca: certs.ca, servername: 'localhost' });
  const open: Socket[] = [];
  t.teardown(() => {
    for (const s of open) s.destroy();
  });
  for (const [protocol, port] of [
    ['http:', plain.port],
    ['https:', secure.port],
  ] as const) {
    const socket = await viaConnector(ours, { hostname: '127.0.0.1', protocol, port });
    open.push(socket);
    t.like(
      await porterSocketOptions(tcpOf(socket), 4),
      { keepAlive: true, keepIdle: 27, congestion: 'reno' },
      protocol,
    );
    // The control: the connector's own keep-alive, after keepAliveInitialDelay (60 s).
    const other = await viaConnector(theirs, { hostname: '127.0.0.1', protocol, port });
    open.push(other);
    t.like(await porterSocketOptions(tcpOf(other), 4), { keepAlive: true, keepIdle: 60 }, protocol);
  }
  // Bad socketOptions throw when the connector is built, as its other options do.
  t.throws(() => connector({ porter, socketOptions: { mark: -1 } }), { code: 'ERR_OUT_OF_RANGE' });
});
