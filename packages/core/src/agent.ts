/**
 * Agent: Node's http.Agent with its sockets from porter. Only `createConnection` is
 * replaced (by porter's, which has net.createConnection's contract); everything else is
 * Node's own Agent: keep-alive and the free list, maxSockets / maxTotalSockets /
 * maxFreeSockets, scheduling, and the idle `timeout` (handed to createConnection as
 * net's is, so it is the socket's idle timeout).
 */
import { type ClientRequestArgs, Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkConnectSettings, unhonoured } from './connect-options.js';
import type { CreateConnectionOptions } from './create-connection.js';
import { idleTimeout } from './deadline.js';
import { defaultPorter, validatePorter } from './default.js';
import { portLeaseOf } from './lease.js';
import type { Porter } from './porter.js';
import { validateObject } from './validate.js';

/** The options of Node's http.Agent, and the Porter whose ports to use. */
export interface AgentOptions extends HttpAgentOptions {
  /** The Porter whose ports to use (default: the default Porter, `defaultPorter()`). */
  porter?: Porter | undefined;
}

/**
 * The options of Node's Agents (and of the connections they make, which an Agent's
 * options are laid over) that an Agent of porter's cannot honour. (`path` is the HTTP
 * path there, which Node's Agent clears itself.)
 */
export const AGENT_REFUSED = unhonoured('localPort', 'socketPath', 'fd');

/**
 * An Agent's options, checked when it is made: not an object (ERR_INVALID_ARG_TYPE), an
 * option in `refused` (ERR_INVALID_ARG_VALUE; a `localPort` of 0 asks for nothing), a bad
 * `porter`, and the connect options Node's Agent lays over every connection, as a
 * connect checks them. Returns the Porter and the options for Node's Agent, with a
 * `timeout` beyond what a Node timer holds as none (see idleTimeout).
 */
export function agentOptions<T extends { porter?: Porter | undefined; timeout?: number | undefined }>(
  options: T | undefined | null,
  refused: Readonly<Record<string, string>>,
): { porter: Porter; rest: Omit<T, 'porter'> } {
  // Node's Agent takes anything; a value that is no object can only be a mistake.
  if (options === undefined || options === null) return { porter: defaultPorter(), rest: {} as Omit<T, 'porter'> };
  validateObject(options, 'options');
  const { porter, ...rest } = options;
  const { timeout } = checkConnectSettings(rest, refused);
  const chosen = validatePorter(porter);
  if (timeout !== undefined) (rest as { timeout?: number }).timeout = idleTimeout(timeout);
  return { porter: chosen, rest };
}

/**
 * An http.Agent whose connections come from porter's ports:
 * `http.get(url, { agent: new Agent({ porter, keepAlive: true }) })`. Node's Agent
 * options keep their meaning.
 */
export class Agent extends HttpAgent {
  /** The Porter this Agent's sockets come from. */
  readonly porter: Porter;

  /**
   * Bad options throw here (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
   * ERR_OUT_OF_RANGE), the connect options laid over every connection included, and so
   * do those porter cannot honour: `localPort` (porter chooses the port), `socketPath`
   * and `fd`.
   */
  constructor(options?: AgentOptions) {
    const { porter, rest } = agentOptions(options, AGENT_REFUSED);
    super(rest);
    this.porter = porter;
  }

  /**
   * Opens a connection for a request: porter's `createConnection` with the options Node's
   * Agent prepared (host, port, localAddress, family, lookup, keep-alive, the idle
   * timeout). Returns the socket at once, as net.createConnection does.
   */
  override createConnection(
    options: ClientRequestArgs,
    _callback?: (err: Error | null, stream: Duplex) => void,
  ): Socket {
    return this.porter.createConnection(options as CreateConnectionOptions);
  }

  /**
   * Node's, but a socket whose keep-alive came from `socketOptions.keepAlive` keeps it:
   * Node's would overwrite it with `setKeepAlive(true, keepAliveMsecs)`.
   */
  override keepSocketAlive(socket: Duplex): boolean {
    return keepSocketAliveAsConfigured(socket, (s) => super.keepSocketAlive(s) as unknown as boolean);
  }
}

/** setKeepAlive that leaves the socket as it is. */
function keepAsIs(this: Socket): Socket {
  return this;
}

/**
 * Agent#keepSocketAlive for porter's sockets. Node's calls `socket.setKeepAlive(true,
 * keepAliveMsecs)` on every socket it keeps for reuse, which overwrites TCP_KEEPIDLE (and
 * TCP_KEEPINTVL and TCP_KEEPCNT, with Node's libuv): on a socket whose keep-alive came
 * from `socketOptions.keepAlive`, that one call leaves the socket as it is, and the rest
 * of Node's method (unref, the idle timeout, the server's Keep-Alive hint) runs
 * unchanged. For the Agents of @porter/core and @porter/tls.
 */
export function keepSocketAliveAsConfigured(socket: Duplex, keep: (socket: Duplex) => boolean): boolean {
  const s = socket as Socket;
  if (portLeaseOf(s)?.keepAliveFromSocketOptions !== true) return keep(socket);
  const own = Object.hasOwn(s, 'setKeepAlive') ? s.setKeepAlive : undefined;
  s.setKeepAlive = keepAsIs;
  try {
    return keep(socket);
  } finally {
    // Assigned back rather than deleted (a delete makes the socket a slow dictionary-mode object).
    s.setKeepAlive = own ?? (Object.getPrototypeOf(s) as Socket).setKeepAlive;
  }
}
