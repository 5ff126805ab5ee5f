/**
 * mqtt.js on porter's ports, with its automatic reconnect: the stream builder is called
 * for the first connection and for every reconnect, and returns porter's socket at once.
 * Needs an MQTT broker (default 127.0.0.1:1883; `mosquitto -p 1883` will do).
 *
 *   node --import tsx examples/mqtt.ts [host] [port]
 */
import { createConnection, leaseOf } from '@porter/core';
import mqtt from 'mqtt';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 1883);
const client = new mqtt.MqttClient(() => createConnection({ host, port }), { reconnectPeriod: 1_000 });
client.on('connect', () => {
  console.log(`connected from port ${client.stream && leaseOf(client.stream)?.localPort}`);
  client.publish('porter/example', 'hello', { qos: 1 }, () => client.end());
});
client.on('error', (err) => console.error(err.message));
