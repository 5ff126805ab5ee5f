/**
 * The dialer of a run: a link of each destination's kind. mqtt.js and ws are imported
 * here, only when a destination needs them, so a raw TCP run never loads them.
 */
import type { Destination } from './destinations.js';
import { type Link, type LinkContext, type LinkSink, TcpLink } from './links.js';

/** Makes the links of a run; loads the MQTT and WebSocket links its destinations need. */
export async function makeDialer(
  ctx: LinkContext,
  destinations: readonly Destination[],
): Promise<(sink: LinkSink, destination: Destination, index: number) => Link> {
  const protocols = new Set(destinations.map((d) => d.protocol));
  const mqtt = protocols.has('mqtt') ? await import('./link-mqtt.js') : undefined;
  const ws = protocols.has('ws') ? await import('./link-ws.js') : undefined;
  return (sink, destination, index) => {
    if (destination.protocol === 'mqtt' && mqtt !== undefined) return new mqtt.MqttLink(sink, ctx, destination, index);
    if (destination.protocol === 'ws' && ws !== undefined) return new ws.WsLink(sink, ctx, destination);
    return new TcpLink(sink, ctx, destination);
  };
}
