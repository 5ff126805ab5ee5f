/**
 * The use case porter comes from: MQTT clients (mqtt.js) over porter's TLS sockets to a
 * real Mosquitto broker, first one, then many at once to two listeners of the broker,
 * sharing the same local ports through a small port range.
 */
import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { Porter } from '@porter/core';
import { connect, leaseOf } from '@porter/tls';
import test from 'ava';
import mqtt, { type MqttClient } from 'mqtt';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { type External, startMosquitto } from '../helpers/external-servers.js';
import { inUse, poolsTo, portState } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';

let certs: Certs;
let broker: External | undefined;
test.before(async () => {
  certs = makeCerts();
  broker = await startMosquitto(
    { caFile: certs.caFile, certFile: certs.server.certFile, keyFile: certs.server.keyFile },
    { tlsListeners: 2 },
  );
});
test.after.always(async () => {
  await broker?.close();
  certs?.cleanup();
});

const run = `${process.pid}-${Date.now()}`;

/** An MQTT client on an already connected porter TLS socket; resolves on CONNACK. */
async function mqttOver(socket: TLSSocket, clientId: string): Promise<MqttClient> {
  const client = new mqtt.MqttClient(() => socket, { clientId, reconnectPeriod: 0, protocolVersion: 4, keepalive: 60 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/** Subscribes to `topic`, publishes `payload` there (QoS 1), resolves to what came back. */
async function echoThroughBroker(client: MqttClient, topic: string, payload: string): Promise<string> {
  await client.subscribeAsync(topic, { qos: 1 });
  const received = new Promise<string>((resolve) => {
    client.on('message', (t, message) => {
      if (t === topic) resolve(message.toString());
    });
  });
  await client.publishAsync(topic, payload, { qos: 1 });
  return received;
}

async function endClient(client: MqttClient, socket: TLSSocket): Promise<void> {
  const closed = socket.closed && leaseOf(socket)?.released ? Promise.resolve() : once(socket, 'close');
  await client.endAsync();
  await closed;
}

test.serial('publish and receive through Mosquitto over a porter TLS socket', async (t) => {
  const port = broker?.ports[0] as number;
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: '127.0.0.1', port, ca: certs.ca, porter, timeout: 5_000 });
  t.true(socket.authorized);
  const localPort = socket.localPort as number;
  const client = await mqttOver(socket, `porter-one-${run}`);
  const topic = `porter/${run}/one`;
  t.is(await echoThroughBroker(client, topic, 'hello broker'), 'hello broker');
  t.deepEqual(inUse(porter), [localPort]);
  await endClient(client, socket);
  // mqtt.js closes the connection itself: this side first, so the port ages.
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, localPort), 'aging');
});

test.serial('many clients at once to two listeners share the same local ports', async (t) => {
  const perListener = 50;
  const rangeSize = 60;
  // A small range outside the kernel's ephemeral ports, somewhere different each run.
  const [first] = await findFreePortBlock(rangeSize);
  const porter = new Porter({
    portRange: [first, first + rangeSize - 1],
    agingMs: 60_000,
    retry: { attempts: 5 },
    kernelFallback: false,
  });
  const listeners = broker?.ports as number[];
  const jobs = listeners.flatMap((port, l) =>
    Array.from({ length: perListener }, async (_, i) => {
      const socket = await connect({ host: '127.0.0.1', port, ca: certs.ca, porter, timeout: 10_000 });
      const client = await mqttOver(socket, `porter-${run}-${l}-${i}`);
      const topic = `porter/${run}/${l}/${i}`;
      const payload = `message ${l}/${i}`;
      const received = await echoThroughBroker(client, topic, payload);
      return { port, localPort: socket.localPort as number, socket, client, ok: received === payload };
    }),
  );
  const results = await Promise.all(jobs);
  t.is(results.filter((r) => r.ok).length, listeners.length * perListener, 'every client got its message');

  const portsTo = (port: number): Set<number> =>
    new Set(results.filter((r) => r.port === port).map((r) => r.localPort));
  const a = portsTo(listeners[0] as number);
  const b = portsTo(listeners[1] as number);
  t.is(a.size, perListener);
  t.is(b.size, perListener);
  for (const p of [...a, ...b]) t.true(p >= first && p < first + rangeSize, `port ${p} in range`);
  const shared = [...a].filter((p) => b.has(p));
  t.log(`${shared.length} of ${rangeSize} local ports carried a connection to each listener at once`);
  // 100 connections from 60 ports must share ports; what is checked is that the sharing
  // is real: each shared port carries, now, an open TLS connection to each listener,
  // and is in use in both listeners' pools.
  const inUseTo = (port: number): Set<number> => new Set(poolsTo(porter, port).flatMap((p) => p.inUse));
  const [poolA, poolB] = listeners.map(inUseTo) as [Set<number>, Set<number>];
  for (const p of shared) {
    const open = results.filter((r) => r.localPort === p && !r.socket.destroyed && r.socket.encrypted);
    t.deepEqual(
      open.map((r) => r.socket.remotePort).sort(),
      [...listeners].sort(),
      `port ${p} carries one open connection to each listener`,
    );
    t.true(poolA.has(p) && poolB.has(p), `port ${p} is in use towards both listeners`);
  }
  t.is(inUse(porter).length, 2 * perListener);

  await Promise.all(results.map((r) => endClient(r.client, r.socket)));
  t.deepEqual(inUse(porter), [], 'no port left in use');
  for (const port of listeners) {
    t.is(poolsTo(porter, port).flatMap((p) => p.aging).length, perListener, 'every port this side closed is aging');
  }
});
