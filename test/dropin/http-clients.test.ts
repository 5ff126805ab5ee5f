/**
 * HTTP clients on porter's ports against real servers on loopback: Node's http.get and
 * https.get with porter's Agents, undici's request and fetch with porter's connector
 * (http and https, and Node's global fetch through setGlobalDispatcher), ws and wss.
 * Each checks that the server saw the port porter leased, and that the port goes back
 * to its pool when the client closes (aging), the server closes (at once), or a
 * keep-alive socket times out.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Agent as HttpAgent, leaseOf, Porter } from '@porter/core';
import { connector, Agent as HttpsAgent, createConnection as tlsCreateConnection } from '@porter/tls';
import test from 'ava';
import { getGlobalDispatcher, request, setGlobalDispatcher, Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { inUse, portState } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { eventually } from '../helpers/wait.js';

let certs: Certs;
test.before(() => {
  certs = makeCerts();
});
test.after.always(() => certs?.cleanup());

interface Web {
  server: Server;
  port: number;
  /** The client port of every request, in order. */
  peers: number[];
  close(): Promise<void>;
}

/**
 * An HTTP(S) server that answers every request with the client's port; `/close` answers
 * with `connection: close` (the server closes first).
 */
async function web(secure: boolean): Promise<Web> {
  const peers: number[] = [];
  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    const port = req.socket.remotePort as number;
    peers.push(port);
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.end(String(port));
  };
  const server = secure
    ? createHttpsServer({ cert: certs.server.cert, key: certs.server.key }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    peers,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function newPorter(): Promise<Porter> {
  const [first, last] = await findFreePortBlock(32);
  return new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });
}

/** GETs `path` with Node's client; resolves to the body and the socket. */
function get(
  secure: boolean,
  port: number,
  path: string,
  agent: HttpAgent | HttpsAgent,
): Promise<{ body: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, agent, ca: certs.ca, servername: 'localhost' };
    const req = (secure ? httpsGet : httpGet)(options, (res) => {
      const socket = res.socket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ body, socket }));
    });
    req.on('error', reject);
  });
}

test("http.get with porter's Agent: the server sees the leased port; keep-alive reuses it; the idle timeout frees it", async (t) => {
  const server = await web(false);
  t.teardown(() => server.close());
  const porter = await newPorter();
  const agent = new HttpAgent({ porter, keepAlive: true, timeout: 300, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await get(false, server.port, '/a', agent);
  const port = leaseOf(first.socket)?.localPort as number;
  t.is(first.body, String(port), 'the server saw the port porter leased');
  const [second, third] = await Promise.all([
    get(false, server.port, '/b', agent),
    get(false, server.port, '/c', agent),
  ]);
  t.is(second.socket, first.socket, 'keep-alive: the same socket again');
  t.is(third.body, String(port), 'maxSockets 1: one connection for all');
  t.deepEqual(server.peers, [port, port, port]);
  t.deepEqual(inUse(porter), [port]);
  // The Agent's timeout is the idle timeout: the free socket times out and is destroyed.
  const timedOut = once(first.socket, 'timeout');
  await timedOut;
  await eventually(() => first.socket.destroyed);
  t.true(await eventually(() => inUse(porter).length === 0), 'the port was given back');
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging', 'this side closed: the port ages');
});

test('http.get, the server closes the connection: the port is given back', async (t) => {
  const server = await web(false);
  t.teardown(() => server.close());
  const porter = await newPorter();
  const agent = new HttpAgent({ porter, keepAlive: true });
  t.teardown(() => agent.destroy());
  const { body, socket } = await get(false, server.port, '/close', agent);
  const port = leaseOf(socket)?.localPort as number;
  t.is(body, String(port));
  // Who sent the first FIN depends on whether the client read the server's FIN before
  // its http layer ended the socket: the port is free at once or ages, never held.
  t.true(await eventually(() => socket.destroyed && (leaseOf(socket)?.released ?? false)));
  t.false(inUse(porter).includes(port));
});

test("https.get with porter's Agent: the TLS session is resumed on the second connection, as with https.Agent", async (t) => {
  const server = await web(true);
  t.teardown(() => server.close());
  const porter = await newPorter();
  // No keep-alive: every request makes a new connection, which the session cache speeds up.
  const agent = new HttpsAgent({ porter, ca: certs.ca });
  t.teardown(() => agent.destroy());
  const first = await get(true, server.port, '/one', agent);
  const firstPort = leaseOf(first.socket)?.localPort as number;
  t.is(first.body, String(firstPort));
  t.false((first.socket as TLSSocket).isSessionReused());
  await eventually(() => first.socket.destroyed);
  const second = await get(true, server.port, '/two', agent);
  const secondPort = leaseOf(second.socket)?.localPort as number;
  t.not(second.socket, first.socket);
  t.is(second.body, String(secondPort));
  t.true((second.socket as TLSSocket).isSessionReused(), 'the second handshake resumed the session');
  t.true(await eventually(() => inUse(porter).length === 0));
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, firstPort), 'aging');
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, secondPort), 'aging');
});

test('https.get with a keep-alive Agent: reuse, then the idle timeout fires and frees the port', async (t) => {
  const server = await web(true);
  t.teardown(() => server.close());
  const porter = await newPorter();
  const agent = new HttpsAgent({ porter, ca: certs.ca, keepAlive: true, timeout: 300 });
  t.teardown(() => agent.destroy());
  const a = await get(true, server.port, '/a', agent);
  const b = await get(true, server.port, '/b', agent);
  t.is(a.socket, b.socket);
  const port = leaseOf(a.socket)?.localPort as number;
  t.deepEqual(server.peers, [port, port]);
  await once(a.socket, 'timeout');
  t.true(await eventually(() => inUse(porter).length === 0));
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
});

test("undici request and fetch, http and https, through porter's connector", async (t) => {
  const plain = await web(false);
  const secure = await web(true);
  t.teardown(() => plain.close());
  t.teardown(() => secure.close());
  const porter = await newPorter();
  const agent = new UndiciAgent({ connect: connector({ porter, ca: certs.ca, servername: 'localhost' }) });
  t.teardown(() => agent.destroy());

  const r1 = await request(`http://127.0.0.1:${plain.port}/a`, { dispatcher: agent });
  const p1 = Number(await r1.body.text());
  const r2 = await undiciFetch(`http://127.0.0.1:${plain.port}/b`, { dispatcher: agent });
  const p2 = Number(await r2.text());
  const r3 = await request(`https://127.0.0.1:${secure.port}/c`, { dispatcher: agent });
  const p3 = Number(await r3.body.text());
  const r4 = await undiciFetch(`https://127.0.0.1:${secure.port}/d`, { dispatcher: agent });
  const p4 = Number(await r4.text());
  const held = inUse(porter);
  for (const p of [p1, p2, p3, p4]) t.true(held.includes(p), `the server saw port ${p}, which porter leased`);

  // The server closes its connection: that port is given back.
  const r5 = await request(`http://127.0.0.1:${plain.port}/close`, { dispatcher: agent });
  const p5 = Number(await r5.body.text());
  t.true([p1, p2].includes(p5), `the /close request went over a kept connection (${p1}, ${p2}), not ${p5}`);
  // (Asked of the plain server's pool: the https connection may hold the same port
  // number towards the other server, as pools are per destination.)
  t.true(
    await eventually(() => portState(porter.snapshot(), '127.0.0.1', plain.port, p5) !== 'in-use'),
    `port ${p5} given back once the server closed`,
  );

  // The client closes: the https connection's port ages.
  await agent.close();
  t.true(await eventually(() => inUse(porter).length === 0), `in use after agent.close(): ${inUse(porter)}`);
  t.is(portState(porter.snapshot(), '127.0.0.1', secure.port, p4), 'aging');
});

test('undici: port "" means the protocol default, and sessions are reused on a new connection', async (t) => {
  const secure = await web(true);
  t.teardown(() => secure.close());
  const porter = await newPorter();
  const connect = connector({ porter, ca: certs.ca });
  const open = (port: string | number): Promise<TLSSocket> =>
    new Promise((resolve, reject) => {
      connect({ hostname: '127.0.0.1', host: `localhost:${port}`, protocol: 'https:', port }, (...args) => {
        if (args[0] === null) resolve(args[1] as TLSSocket);
        else reject(args[0]);
      });
    });
  const s1 = await open(secure.port);
  s1.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
  s1.resume();
  await once(s1, 'close');
  const s2 = await open(String(secure.port));
  t.true(s2.isSessionReused(), 'the second connection resumed the session cached per server name');
  s2.destroy();
  // port '' is 443 for https: nothing listens there on loopback, so the connect is refused.
  const err = await open('').catch((e: NodeJS.ErrnoException) => e);
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  t.is((err as NodeJS.ErrnoException & { port?: number }).port, 443);
  t.true(await eventually(() => inUse(porter).length === 0));
});

test("Node's global fetch through setGlobalDispatcher", async (t) => {
  const server = await web(false);
  t.teardown(() => server.close());
  const porter = await newPorter();
  const previous = getGlobalDispatcher();
  const agent = new UndiciAgent({ connect: connector({ porter }) });
  setGlobalDispatcher(agent);
  t.teardown(async () => {
    setGlobalDispatcher(previous);
    await agent.destroy();
  });
  const res = await fetch(`http://127.0.0.1:${server.port}/global`);
  const port = Number(await res.text());
  t.deepEqual(inUse(porter), [port], 'the global fetch went through porter');
  await agent.close();
  t.true(await eventually(() => inUse(porter).length === 0));
  t.is(portState(porter.snapshot(), '127.0.0.1', server.port, port), 'aging');
});

async function wsServer(
  secure: boolean,
): Promise<{ port: number; peers: number[]; wss: WebSocketServer; close(): Promise<void> }> {
  const peers: number[] = [];
  const server = secure ? createHttpsServer({ cert: certs.server.cert, key: certs.server.key }) : createHttpServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    peers.push(req.socket.remotePort as number);
    ws.on('message', (data) => {
      if (String(data) === 'bye') ws.close();
      else ws.send(data);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    peers,
    wss,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function echoOnce(ws: WebSocket, text: string): Promise<string> {
  if (ws.readyState !== WebSocket.OPEN) await once(ws, 'open');
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return String(data);
}

test("ws through porter's createConnection and wss through porter's https Agent", async (t) => {
  const plain = await wsServer(false);
  const secure = await wsServer(true);
  t.teardown(() => plain.close());
  t.teardown(() => secure.close());
  const porter = await newPorter();

  // ws: the client closes first, the port ages.
  const ws = new WebSocket(`ws://127.0.0.1:${plain.port}/`, {
    createConnection: porter.createConnection.bind(porter),
  });
  t.is(await echoOnce(ws, 'hello'), 'hello');
  const wsPort = plain.peers[0] as number;
  t.deepEqual(inUse(porter), [wsPort]);
  ws.close();
  await once(ws, 'close');
  t.true(await eventually(() => inUse(porter).length === 0));

  // wss with the Agent: the server closes first, the port is free at once.
  const agent = new HttpsAgent({ porter, ca: certs.ca });
  const wss = new WebSocket(`wss://localhost:${secure.port}/`, { agent, ca: certs.ca });
  t.is(await echoOnce(wss, 'secure hello'), 'secure hello');
  const wssPort = secure.peers[0] as number;
  t.deepEqual(inUse(porter), [wssPort]);
  wss.send('bye');
  await once(wss, 'close');
  t.true(await eventually(() => inUse(porter).length === 0), 'the server closed: the port was given back');

  // wss through tls createConnection directly.
  const direct = new WebSocket(`wss://localhost:${secure.port}/`, {
    createConnection: tlsCreateConnection,
    porter,
    ca: certs.ca,
  } as WebSocket.ClientOptions);
  t.is(await echoOnce(direct, 'direct'), 'direct');
  t.deepEqual(inUse(porter), [secure.peers[1] as number]);
  direct.terminate();
  await once(direct, 'close');
  t.true(await eventually(() => inUse(porter).length === 0));
});
