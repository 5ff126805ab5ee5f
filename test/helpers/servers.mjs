// @ts-check
/**
 * TCP and TLS servers for tests, fixtures and benchmarks, each group in a child process
 * of its own (server-child.mjs), so that the connections opened against them do not
 * share the event loop or the file descriptors of the side being tested or measured.
 *
 * Modes:
 * - 'echo': accepts and echoes; ends its side when the client ends (so it holds every
 *   connection open until the client goes).
 * - 'close-first': accepts, then ends the connection at once (the server closes first, so
 *   the client side never sits in TIME_WAIT).
 * - 'reset-first': accepts, then resets the connection (RST from the server) when the
 *   client's first data arrives: after the client has seen its connect complete. (A
 *   reset at accept can reach the client before it looks, and the connect then fails
 *   with ECONNRESET, as net.connect's does.)
 * - 'close-on-data': accepts, then closes the connection when the client's first data
 *   arrive (a TLS ClientHello, say: a handshake cut short).
 * - 'silent': accepts, reads and never sends a byte (a TLS handshake that never ends).
 * - 'no-accept': listens and never accepts (the child's event loop is blocked). With a
 *   tiny backlog (the default), once the accept queue is full further SYNs are dropped
 *   and a connect stays pending (see {@link fillAcceptQueue}); with a deep one, tens of
 *   thousands of connections stay established in the accept queue at no descriptor's cost.
 *
 * startServers() starts a group of listeners in one mode; startNamedServers() listeners
 * of several modes, by name (the fault fixtures' peers).
 */
import { spawn } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** @typedef {'echo' | 'close-first' | 'reset-first' | 'close-on-data' | 'silent' | 'no-accept'} ServerMode */

/**
 * One listener: its mode, TLS with this key and certificate (file names), and its port
 * (default: one the kernel chose).
 * @typedef {{ mode: ServerMode, tls?: { key: string, cert: string }, port?: number }} Listener
 */

/**
 * @typedef {object} ServerGroupOptions
 * @property {number} [count] How many listeners (each on a port the kernel chose). Default 1.
 * @property {number[]} [ports] Listen on these ports (one listener each) instead: fixed
 *   ports, for a network namespace of the test's own, where nothing else listens.
 * @property {string} [host] Address to listen on. Default '127.0.0.1'.
 * @property {ServerMode} [mode] Default 'echo'.
 * @property {number} [backlog] listen() backlog. Default 511, or 1 for 'no-accept' (Node
 *   reads 0 as the default).
 * @property {number} [lifetimeMs] For 'no-accept': how long the child blocks before it
 *   exits on its own (finite). Default 120 s.
 * @property {{ key: string, cert: string }} [tls] TLS listeners with this key and
 *   certificate (file names) instead of TCP ones.
 * @property {number} [reusePort] One listener on this port with SO_REUSEPORT, so that
 *   several groups (processes) share it and the kernel spreads the connections over them.
 *   Node 20 has no reusePort option: perl makes the socket (SO_REUSEPORT, bind, listen)
 *   and runs the child with it as a descriptor.
 */

/**
 * @typedef {object} ServerGroup
 * @property {string} host
 * @property {number[]} ports
 * @property {number} pid
 * @property {() => Promise<{ accepted: number, open: number }>} count The connections
 *   accepted so far and those open now (not in mode 'no-accept': its child never answers).
 * @property {() => Promise<void>} stop Kills the child and waits for it to exit. Idempotent.
 */

/**
 * What the child reads from its first argument.
 * @typedef {{ listeners: Listener[], host: string, backlog: number, lifetimeMs: number }} ChildConfig
 */

/**
 * A child serving `config`'s listeners.
 * @typedef {object} ServerChild
 * @property {number[]} ports In the order of the listeners.
 * @property {number} pid
 * @property {() => Promise<{ accepted: number, open: number }>} count
 * @property {() => Promise<void>} stop
 */

const CHILD = fileURLToPath(new URL('./server-child.mjs', import.meta.url));

/** perl: a listening socket with SO_REUSEPORT (host, port, backlog), then node ... <its fd>. */
const REUSEPORT = `
my ($host, $port, $backlog, @command) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEPORT, 1) or die "SO_REUSEPORT: $!";
bind($s, pack_sockaddr_in($port, inet_aton($host))) or die "bind: $!";
listen($s, $backlog) or die "listen: $!";
fcntl($s, F_SETFD, 0) or die "fcntl: $!";
exec { $command[0] } @command, fileno($s) or die "exec: $!";
`;

/**
 * Starts `count` listeners in one child process and returns their ports.
 * @param {ServerGroupOptions} [options]
 * @returns {Promise<ServerGroup>}
 */
export async function startServers(options = {}) {
  const mode = options.mode ?? 'echo';
  const host = options.host ?? '127.0.0.1';
  /** @type {Listener} */
  const listener = options.tls === undefined ? { mode } : { mode, tls: options.tls };
  const listeners =
    options.reusePort !== undefined
      ? [listener]
      : options.ports
        ? options.ports.map((port) => ({ ...listener, port }))
        : Array.from({ length: options.count ?? 1 }, () => listener);
  const config = {
    listeners,
    host,
    backlog: options.backlog ?? (mode === 'no-accept' ? 1 : 511),
    lifetimeMs: options.lifetimeMs ?? 120_000,
  };
  const child = await spawnServers(config, options.reusePort);
  return { host, ...child };
}

/**
 * Starts one listener per name in one child process, on 127.0.0.1 with a deep backlog
 * (4096); resolves to `{ ports: { name: port }, count, stop }`.
 * @template {string} Name
 * @param {Record<Name, Listener>} spec
 * @returns {Promise<Omit<ServerChild, 'ports'> & { ports: Record<Name, number> }>}
 */
export async function startNamedServers(spec) {
  const names = /** @type {Name[]} */ (Object.keys(spec));
  const child = await spawnServers({
    listeners: names.map((n) => spec[n]),
    host: '127.0.0.1',
    backlog: 4096,
    lifetimeMs: 120_000,
  });
  const ports = /** @type {Record<Name, number>} */ (Object.fromEntries(names.map((n, i) => [n, child.ports[i]])));
  return { ...child, ports };
}

/**
 * The child process serving `config`, once it listens (with `reusePort`: its one listener
 * on that port, shared with SO_REUSEPORT).
 * @param {ChildConfig} config @param {number} [reusePort]
 * @returns {Promise<ServerChild>}
 */
async function spawnServers(config, reusePort) {
  if (!Number.isFinite(config.lifetimeMs)) throw new RangeError('lifetimeMs must be finite');
  const node = [CHILD, JSON.stringify(config)];
  const child =
    reusePort === undefined
      ? spawn(process.execPath, node, { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(
          'perl',
          [
            ...['-MSocket', '-MFcntl', '-e', REUSEPORT],
            ...[config.host, String(reusePort), String(config.backlog), process.execPath, ...node],
          ],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.on('error', () => {});
  /** @type {((line: string) => void)[]} */
  const readers = [];
  createInterface({ input: child.stdout }).on('line', (line) => readers.shift()?.(line));
  let err = '';
  child.stderr.on('data', (/** @type {Buffer} */ d) => {
    err += d.toString();
  });
  /** The next line the child prints, parsed. @returns {Promise<any>} */
  const nextLine = () => new Promise((resolve) => readers.push((line) => resolve(JSON.parse(line))));
  const ready = await new Promise((resolve, reject) => {
    /** @param {Error} e */
    const fail = (e) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`server child did not start: ${err}`)), 10_000);
    /** @param {number | null} code @param {string | null} signal */
    const onExit = (code, signal) => fail(new Error(`server child exited (${code ?? signal}): ${err}`));
    child.once('error', fail);
    child.once('exit', onExit);
    nextLine().then((line) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(line);
    }, fail);
  });
  /** @type {Promise<void> | undefined} */
  let stopping;
  return {
    ports: ready.ports,
    pid: /** @type {number} */ (child.pid),
    count() {
      const answer = nextLine();
      child.stdin.write('count\n');
      return answer;
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/**
 * Opens plain connections to a 'no-accept' listener until one stays pending (its SYN
 * dropped because the accept queue is full). Returns the sockets opened; destroy them
 * when done. Throws if the queue never fills within `max` connections.
 * @param {string} host @param {number} port @param {number} [max] @param {number} [settleMs]
 * @returns {Promise<import('node:net').Socket[]>}
 */
export async function fillAcceptQueue(host, port, max = 16, settleMs = 250) {
  const sockets = [];
  for (let i = 0; i < max; i++) {
    const socket = netConnect({ host, port });
    socket.on('error', () => {});
    sockets.push(socket);
    const connected = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), settleMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!connected) return sockets;
  }
  for (const s of sockets) s.destroy();
  throw new Error(`the accept queue of ${host}:${port} did not fill after ${max} connections`);
}
