/**
 * Clients that build their own sockets, on porter's ports, against real servers started
 * for the test: mqtt.js (stream builder, automatic reconnect) against Mosquitto over TCP
 * and TLS, pg's Pool (its `stream` factory) against PostgreSQL, ioredis (its Connector)
 * against redis-server. Each server reports the client's port, which must be one porter
 * leased; the port goes back when the client closes, the server closes, or the connect
 * fails.
 */
import { leaseOf, Porter } from '@porter/core';
import { createConnection as tlsCreateConnection } from '@porter/tls';
import test from 'ava';
import { AbstractConnector, Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import {
  type Mosquitto,
  mosquittoClientPorts,
  postgresBin,
  startMosquitto,
  startPostgres,
  startRedis,
} from '../helpers/external-servers.js';
import { inUse, portState } from '../helpers/pools.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { programsMissing, testIf, which } from '../helpers/requirements.js';
import { eventually } from '../helpers/wait.js';

const mosquittoWhy = programsMissing({ mosquitto: which('mosquitto'), openssl: which('openssl') });
const postgresWhy = programsMissing({ postgresql: postgresBin(), runuser: which('runuser') });
const redisWhy = programsMissing({ 'redis-server': which('redis-server') });
const mqttTest = testIf(mosquittoWhy, { serial: true });
const pgTest = testIf(postgresWhy, { serial: true });
const redisTest = testIf(redisWhy, { serial: true });

async function newPorter(): Promise<Porter> {
  const [first, last] = await findFreePortBlock(32);
  return new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });
}

const run = `${process.pid}-${Date.now()}`;

let certs: Certs | undefined;
let broker: Mosquitto | undefined;
test.before(async () => {
  if (mosquittoWhy !== undefined) return;
  certs = makeCerts();
  broker = await startMosquitto(
    { caFile: certs.caFile, certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    { tcpListeners: 1, persistence: true },
  );
});
test.after.always(async () => {
  await broker?.close();
  certs?.cleanup();
});

function connected(client: MqttClient): Promise<void> {
  return client.connected ? Promise.resolve() : new Promise((resolve) => client.once('connect', () => resolve()));
}

async function reconnectThroughOutage(t: import('ava').ExecutionContext, secure: boolean): Promise<void> {
  const b = broker as Mosquitto;
  const c = certs as Certs;
  const porter = await newPorter();
  const listener = (secure ? b.ports[0] : b.tcpPorts[0]) as number;
  const topic = `porter/${run}/${secure ? 'tls' : 'tcp'}`;
  const sockets: import('node:net').Socket[] = [];
  // mqtt.js calls the stream builder for the first connection and for every reconnect.
  const builder = (): import('node:net').Socket => {
    const socket = secure
      ? tlsCreateConnection({ host: '127.0.0.1', port: listener, ca: c.ca, servername: 'localhost', porter })
      : porter.createConnection({ host: '127.0.0.1', port: listener });
    sockets.push(socket);
    return socket;
  };
  const publisher = new mqtt.MqttClient(builder, {
    clientId: `porter-pub-${run}-${secure}`,
    protocolVersion: 4,
    reconnectPeriod: 100,
    connectTimeout: 5_000,
  });
  publisher.on('error', () => {});
  t.teardown(() => publisher.end(true));
  await connected(publisher);
  const firstPort = leaseOf(sockets[0] as object)?.localPort as number;
  t.deepEqual(inUse(porter), [firstPort]);
  t.true(
    await eventually(() => mosquittoClientPorts(b.output(), listener).includes(firstPort)),
    'the broker saw the port porter leased',
  );

  // A subscriber with a persistent session (plain mqtt.js, not porter's): the broker
  // keeps its QoS 1 messages across the restart.
  const subscriber = mqtt.connect({
    host: '127.0.0.1',
    port: b.tcpPorts[0] as number,
    clientId: `porter-sub-${run}-${secure}`,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 100,
  });
  subscriber.on('error', () => {});
  t.teardown(() => subscriber.end(true));
  await connected(subscriber);
  await subscriber.subscribeAsync(topic, { qos: 1 });
  const received = new Promise<string>((resolve) => {
    subscriber.on('message', (tp, message) => {
      if (tp === topic) resolve(message.toString());
    });
  });

  // The broker goes away: the client notices, and porter has the port back.
  const offline = new Promise<void>((resolve) => publisher.once('offline', () => resolve()));
  await b.stop();
  await offline;
  t.true(await eventually(() => inUse(porter).length === 0), 'the port came back when the broker closed');

  // A QoS 1 publish during the outage: mqtt.js keeps it until it can send it.
  let acked = false;
  const published = publisher.publishAsync(topic, 'sent during the outage', { qos: 1 }).then(() => {
    acked = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.false(acked);
  t.true(sockets.length >= 2, 'mqtt.js tried to reconnect through porter');

  await b.start();
  await published;
  t.is(await received, 'sent during the outage');
  const current = sockets.at(-1) as import('node:net').Socket;
  const port = leaseOf(current)?.localPort as number;
  t.truthy(port);
  t.deepEqual(inUse(porter), [port], 'the reconnected client holds one port of porter');
  t.true(
    await eventually(() => mosquittoClientPorts(b.output(), listener).includes(port)),
    'the broker saw the reconnect come from that port',
  );
  await publisher.endAsync();
  t.true(await eventually(() => inUse(porter).length === 0));
  t.is(portState(porter.snapshot(), '127.0.0.1', listener, port), 'aging', 'the client closed first: the port ages');
}

mqttTest(
  'mqtt.js over porter TCP: reconnects through porter after a broker restart; a QoS 1 publish made during the outage is delivered',
  async (t) => {
    await reconnectThroughOutage(t, false);
  },
);

mqttTest('mqtt.js over porter TLS: the same through a broker restart', async (t) => {
  await reconnectThroughOutage(t, true);
});

pgTest("pg's Pool with a stream factory on createConnection: the server sees porter's ports", async (t) => {
  const server = await startPostgres(postgresBin() as string);
  t.teardown(() => server.close());
  const [serverPort] = server.ports as [number];
  const porter = await newPorter();
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port: serverPort,
    user: server.user,
    database: server.database,
    max: 2,
    // pg calls connect(port, host) on what the factory returns: it joins this connect.
    stream: () => porter.createConnection({ host: '127.0.0.1', port: serverPort }),
  });
  // The session the server terminates reports its error to the pool.
  pool.on('error', () => {});
  t.teardown(() => pool.end().catch(() => {}));
  const [a, b] = await Promise.all([
    pool.query<{ port: number; pid: number }>('SELECT inet_client_port() AS port, pg_backend_pid() AS pid'),
    pool.query<{ port: number; pid: number }>(
      'SELECT inet_client_port() AS port, pg_sleep(0.05), pg_backend_pid() AS pid',
    ),
  ]);
  const ports = [a.rows[0]?.port, b.rows[0]?.port].map(Number).sort();
  t.deepEqual(inUse(porter).sort(), ports, 'PostgreSQL saw the ports porter leased');

  // The server ends one session: its port is given back.
  const victim = a.rows[0]?.pid as number;
  const client = await pool.connect();
  const other = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const otherPid = other.rows[0]?.pid as number;
  const target = otherPid === victim ? (b.rows[0]?.pid as number) : victim;
  await client.query('SELECT pg_terminate_backend($1)', [target]);
  client.release();
  t.true(await eventually(() => inUse(porter).length === 1), 'the terminated session gave its port back');

  // The pool ends: this side closes, every port ages.
  await pool.end();
  t.true(await eventually(() => inUse(porter).length === 0));
  for (const p of ports) {
    t.true(portState(porter.snapshot(), '127.0.0.1', serverPort, p) === 'aging' || !inUse(porter).includes(p));
  }

  // A refused connect through the factory: the error reaches pg, nothing is held.
  const closed = await freePort();
  const refused = new pg.Pool({
    host: '127.0.0.1',
    port: closed,
    user: 'porter',
    stream: () => porter.createConnection({ host: '127.0.0.1', port: closed }),
  });
  const err = await refused.query('SELECT 1').catch((e: NodeJS.ErrnoException) => e);
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  await refused.end();
  t.deepEqual(inUse(porter), []);
});

/** ioredis's connector on porter's createConnection. */
function porterConnector(porter: Porter, port: number) {
  return class PorterConnector extends AbstractConnector {
    constructor() {
      super(2_000);
    }
    connect(): Promise<import('node:net').Socket> {
      this.connecting = true;
      const socket = porter.createConnection({ host: '127.0.0.1', port });
      this.stream = socket;
      return Promise.resolve(socket);
    }
  };
}

redisTest(
  "ioredis with a Connector on createConnection: the server sees porter's port; reconnect after a kill",
  async (t) => {
    const server = await startRedis(which('redis-server') as string);
    t.teardown(() => server.close());
    const [serverPort] = server.ports as [number];
    const porter = await newPorter();
    const redis = new Redis({
      port: serverPort,
      Connector: porterConnector(porter, serverPort),
      retryStrategy: () => 50,
    });
    redis.on('error', () => {});
    t.teardown(() => redis.disconnect());
    await redis.set('porter', 'ports');
    t.is(await redis.get('porter'), 'ports');
    const info = String(await redis.client('INFO'));
    const port = Number(/addr=[^ ]*:(\d+)/.exec(info)?.[1]);
    t.deepEqual(inUse(porter), [port], 'redis saw the port porter leased');

    // The server kills the connection: the port comes back, ioredis reconnects through porter.
    const admin = new Redis({ port: serverPort, host: '127.0.0.1', lazyConnect: false });
    t.teardown(() => admin.disconnect());
    await admin.client('KILL', 'ADDR', `127.0.0.1:${port}`);
    t.true(await eventually(() => !inUse(porter).includes(port)), 'the killed connection gave its port back');
    t.is(await redis.get('porter'), 'ports');
    const again = Number(/addr=[^ ]*:(\d+)/.exec(String(await redis.client('INFO')))?.[1]);
    t.deepEqual(inUse(porter), [again]);

    // QUIT: the server closes after its reply; the port is given back.
    await redis.quit();
    t.true(await eventually(() => inUse(porter).length === 0));
  },
);
