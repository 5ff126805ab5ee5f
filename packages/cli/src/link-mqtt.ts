/**
 * MQTT clients for `porter hold mqtt://` and `mqtts://`: mqtt.js on a socket from porter
 * (its stream builder returns porter's `createConnection`, or @porter/tls's for mqtts).
 * Opened is the CONNACK accepting the client. With --message, each client publishes it at
 * QoS 0 to its topic; when the topic names the client (%i or %c), the client subscribes
 * to it first, so the broker delivers every publish back to it: the round trip from
 * publish to delivery. Loaded only when a destination is mqtt:// or mqtts://.
 */
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import type { Destination } from './destinations.js';
import { Link, type LinkContext, type LinkSink, MAX_BUFFERED, openSocket } from './links.js';

/** The topic of connection `index` whose client id is `clientId`. */
export function topicFor(pattern: string, index: number, clientId: string): string {
  return pattern.replaceAll('%i', String(index)).replaceAll('%c', clientId);
}

/** Whether each client has a topic of its own (then it subscribes to it). */
export function topicIsOwn(pattern: string): boolean {
  return pattern.includes('%i') || pattern.includes('%c');
}

/** A CONNACK refusal's code (mqtt.js gives the number): MQTT_CONNACK_5 for "not authorized". */
function mqttError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? Object.assign(err as Error, { code: `MQTT_CONNACK_${code}` }) : err;
}

export class MqttLink extends Link {
  #client: MqttClient | undefined;
  #socket: Socket | undefined;
  #topic = '';

  constructor(
    sink: LinkSink,
    ctx: LinkContext,
    dest: Destination,
    private readonly index: number,
  ) {
    super(sink, ctx, dest);
  }

  start(): void {
    const { ctx, dest } = this;
    const clientId = `${ctx.clientPrefix}${this.index}`;
    this.#topic = topicFor(ctx.topic, this.index, clientId);
    const build = (): Socket => {
      this.#socket = openSocket(ctx, dest, ['mqtt']);
      return this.#socket;
    };
    const client = new mqtt.MqttClient(build, {
      clientId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      // The engine's deadline covers the CONNACK; mqtt.js's own would only come later.
      connectTimeout: 2 ** 31 - 1,
      ...(dest.username !== undefined ? { username: dest.username } : {}),
      ...(dest.password !== undefined ? { password: dest.password } : {}),
    });
    this.#client = client;
    client.on('error', (err) => this.onError(mqttError(err)));
    client.once('close', () => this.onClose());
    client.once('connect', () => this.#connected(client));
  }

  #connected(client: MqttClient): void {
    const { ctx } = this;
    if (ctx.message === undefined || !topicIsOwn(ctx.topic)) {
      this.onOpen();
      return;
    }
    client.on('message', (topic, payload) => {
      if (topic === this.#topic) this.sink.received(this, 1, payload.length);
    });
    // Opened once the broker will deliver the client's own publishes back to it.
    client.subscribe(this.#topic, { qos: 0 }, (err) => {
      if (err) this.onError(err);
      else this.onOpen();
    });
  }

  end(): void {
    this.#client?.end(false);
  }

  destroy(): void {
    this.#client?.end(true);
    this.#socket?.destroy();
  }

  write(payload: Buffer): boolean {
    const client = this.#client;
    if (client === undefined || !client.connected || (this.#socket?.writableLength ?? 0) > MAX_BUFFERED) return false;
    client.publish(this.#topic, payload, { qos: 0 });
    return true;
  }
}
