/**
 * The destinations of `porter hold`: `host:port` (raw TCP, or TLS with --tls), and URLs
 * whose scheme says what is held on the connection: `mqtt://` and `mqtts://` (MQTT
 * clients, CONNACK counted as opened), `ws://` and `wss://` (WebSocket clients, the
 * upgrade counted as opened).
 */
import { parseTarget, type Target, UsageCodes, UsageError } from './usage.js';

/** What runs on a connection: bytes (raw TCP/TLS), an MQTT client, a WebSocket client. */
export type Protocol = 'tcp' | 'mqtt' | 'ws';

/** One destination, parsed. */
export interface Destination extends Target {
  protocol: Protocol;
  /** TLS: mqtts://, wss://, or a host:port with --tls. */
  tls: boolean;
  /** ws: the URL to open (path and query kept). */
  url?: string;
  /** mqtt: the credentials of the URL (mqtt://user:password@host). */
  username?: string;
  password?: string;
}

const SCHEMES: Record<string, { protocol: Protocol; tls: boolean; port: number }> = {
  'mqtt:': { protocol: 'mqtt', tls: false, port: 1883 },
  'mqtts:': { protocol: 'mqtt', tls: true, port: 8883 },
  'ws:': { protocol: 'ws', tls: false, port: 80 },
  'wss:': { protocol: 'ws', tls: true, port: 443 },
};

const FIX =
  'give each destination as host:port (raw TCP), mqtt://host:port, mqtts://host:port, ws://host:port/path or wss://host:port/path';

const invalid = (message: string): UsageError =>
  new UsageError(UsageCodes.INVALID_ARG_VALUE, '<destination>', message, FIX);

/** `host:port`, or a URL of a scheme hold knows. `tls` is --tls, for host:port. */
export function parseDestination(text: string, tls: boolean): Destination {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      return { ...parseTarget(text), protocol: 'tcp', tls };
    } catch (err) {
      if (err instanceof UsageError) throw invalid(err.message);
      throw err;
    }
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`"${text}" is not a URL`);
  }
  const scheme = SCHEMES[url.protocol];
  if (scheme === undefined) throw invalid(`"${url.protocol}//" is not a scheme porter hold knows`);
  if (tls) {
    throw new UsageError(
      UsageCodes.INVALID_ARG_VALUE,
      '--tls',
      `--tls applies to host:port destinations; ${url.protocol}// says itself whether it is TLS`,
      `use ${scheme.protocol}s:// for TLS, and leave out --tls`,
    );
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw invalid(`"${text}" has no host`);
  const port = url.port === '' ? scheme.port : Number(url.port);
  return {
    host,
    port,
    text,
    protocol: scheme.protocol,
    tls: scheme.tls,
    ...(scheme.protocol === 'ws' ? { url: url.href } : {}),
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
  };
}
