/**
 * Agent: Node's https.Agent with its connections from porter. Only the step where
 * Node's `https.Agent#createConnection` calls `tls.connect` is replaced (by porter's
 * createConnection, which has tls.connect's contract); the session cache is still the
 * Agent's own (`_getSession`, `_cacheSession`, `_evictSession`, bounded by
 * `maxCachedSessions`), so a second connection to the same host resumes the TLS session
 * as with Node's Agent, and keep-alive, maxSockets and the idle `timeout` are Node's.
 */
import type { ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Porter } from '@porter/core';
import { AGENT_REFUSED, agentOptions, keepSocketAliveAsConfigured, unhonoured } from '@porter/core/internal';
import { checkTlsOptions } from './connect.js';
import { type CreateConnectionOptions, createConnection } from './create-connection.js';

/** The options of Node's https.Agent, and the Porter whose ports to use. */
export interface AgentOptions extends HttpsAgentOptions {
  /** The Porter whose ports to use (default: the default Porter, `defaultPorter()`). */
  porter?: Porter | undefined;
}

/** The options porter's https Agent cannot honour: the http Agent's, and a connection to wrap. */
const REFUSED = { ...AGENT_REFUSED, ...unhonoured('socket') };

/** https.Agent's session cache, which @types/node does not declare. */
interface SessionCache {
  _getSession(key: string): Buffer | undefined;
  _cacheSession(key: string, session: Buffer): void;
  _evictSession(key: string): void;
}

/**
 * An https.Agent whose connections come from porter's ports:
 * `https.get(url, { agent: new Agent({ porter, keepAlive: true }) })`. Node's Agent
 * options (and the TLS options it passes on to each connection) keep their meaning.
 */
export class Agent extends HttpsAgent {
  /** The Porter this Agent's sockets come from. */
  readonly porter: Porter;

  /**
   * Bad options throw here (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
   * ERR_OUT_OF_RANGE), the TCP and TLS options laid over every connection included, and
   * so do those porter cannot honour: `localPort` (porter chooses the port),
   * `socketPath`, `fd` and `socket` (porter makes the connection).
   */
  constructor(options?: AgentOptions) {
    const { porter, rest } = agentOptions(options, REFUSED);
    // The TLS options, laid over every connection too.
    checkTlsOptions(rest as Record<string, unknown>);
    super(rest);
    this.porter = porter;
  }

  /**
   * What Node's https.Agent#createConnection does, on porter's ports: the cached session
   * for this Agent key is offered, a new one is cached when the server sends it, and it
   * is evicted when the connection closes with an error.
   */
  override createConnection(
    options: RequestOptions | ClientRequestArgs,
    _callback?: (err: Error | null, stream: Duplex) => void,
  ): TLSSocket {
    const cache = this as unknown as SessionCache;
    const key = (options as { _agentKey?: string })._agentKey;
    let connectOptions = { ...options, porter: this.porter } as unknown as CreateConnectionOptions;
    if (key) {
      const session = cache._getSession(key);
      if (session) connectOptions = { session, ...connectOptions };
    }
    const socket = createConnection(connectOptions);
    if (key) {
      socket.on('session', (session: Buffer) => cache._cacheSession(key, session));
      socket.once('close', (hadError: boolean) => {
        if (hadError) cache._evictSession(key);
      });
    }
    return socket;
  }

  /**
   * Node's, but a socket whose keep-alive came from `socketOptions.keepAlive` keeps it:
   * Node's would overwrite it with `setKeepAlive(true, keepAliveMsecs)`.
   */
  override keepSocketAlive(socket: Duplex): boolean {
    return keepSocketAliveAsConfigured(socket, (s) => super.keepSocketAlive(s) as unknown as boolean);
  }
}
