/**
 * Servers the TLS tests talk to: Node's tls server (in this process, for light tests),
 * a TCP server that accepts and never answers, `openssl s_server` and Mosquitto (each in
 * its own process, on a free loopback port found by binding port 0, retried on a
 * collision).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import {
  type AddressInfo,
  connect as netConnect,
  createServer as netCreateServer,
  type Server,
  type Socket,
} from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { type TLSSocket, type TlsOptions, createServer as tlsCreateServer } from 'node:tls';

export interface Running {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1, port 0; resolves to the port. */
async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes `server` and destroys whatever it still has open. */
function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

export interface TlsServer extends Running {
  server: Server;
  /** Every TLS socket accepted so far, in order. */
  accepted: TLSSocket[];
  /** Resets the TCP connection under `socket` (one of `accepted`): RST, no TLS alert. */
  reset(socket: TLSSocket): void;
}

/**
 * Node's TLS server in this process. Echoes what it receives unless `onSecure` takes
 * the socket over.
 */
export async function startTlsServer(
  options: TlsOptions,
  onSecure?: (socket: TLSSocket) => void,
  host = '127.0.0.1',
): Promise<TlsServer> {
  const sockets = new Set<Socket>();
  const accepted: TLSSocket[] = [];
  const server = tlsCreateServer(options, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    if (onSecure) onSecure(socket);
    else socket.pipe(socket);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server, host);
  const reset = (socket: TLSSocket): void => {
    const raw = [...sockets].find((r) => r.remotePort === socket.remotePort);
    if (raw === undefined) throw new Error(`no connection from port ${socket.remotePort}`);
    raw.resetAndDestroy();
  };
  return { port, server, accepted, reset, close: closer(server, sockets) };
}

/** A TCP server that accepts connections and never sends a byte. */
export async function startSilentServer(): Promise<Running & { connections: () => number }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = netCreateServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  return { port, connections: () => count, close: closer(server, sockets) };
}

/** A loopback port that was free a moment ago (bound with port 0, then closed). */
export async function freePort(): Promise<number> {
  const server = netCreateServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
async function accepting(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await delay(25);
  }
  throw new Error(`nothing accepts on port ${port}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  };
}

/** Starts a process that listens on the ports it is given, retrying on a port collision. */
async function spawnOnFreePorts(
  count: number,
  start: (ports: number[]) => ChildProcess,
  ready: (ports: number[], child: ChildProcess) => Promise<void>,
): Promise<{ ports: number[]; child: ChildProcess; output: () => string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports: number[] = [];
    while (ports.length < count) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const child = start(ports);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    try {
      await ready(ports, child);
      return { ports, child, output: () => output };
    } catch (err) {
      lastError = new Error(`${(err as Error).message}: ${output}`);
      await stopper(child)();
    }
  }
  throw lastError;
}

export interface External {
  ports: number[];
  output(): string;
  close(): Promise<void>;
}

/** `openssl s_server -www` on 127.0.0.1: answers an HTTP GET with its status page. */
export async function startOpensslServer(certFile: string, keyFile: string): Promise<External> {
  const { ports, child, output } = await spawnOnFreePorts(
    1,
    ([port]) =>
      spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', certFile, '-key', keyFile, '-www'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    async ([port], child) => {
      await accepting(port as number, child, 5_000);
    },
  );
  return { ports, output, close: stopper(child) };
}

/**
 * Mosquitto with one TLS listener per port (all on 127.0.0.1), the given certificates,
 * anonymous access, no persistence, logging to stderr.
 */
export async function startMosquitto(
  dir: string,
  tls: { caFile: string; certFile: string; keyFile: string },
  listeners: number,
): Promise<External> {
  const config = join(dir, 'mosquitto.conf');
  const { ports, child, output } = await spawnOnFreePorts(
    listeners,
    (ports) => {
      const lines = [
        // Run as the user who started it (as root it would switch to 'mosquitto', who
        // cannot read the test's private temporary directory).
        `user ${userInfo().username}`,
        'per_listener_settings false',
        'allow_anonymous true',
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'max_keepalive 600',
      ];
      for (const port of ports) {
        lines.push(
          `listener ${port} 127.0.0.1`,
          `cafile ${tls.caFile}`,
          `certfile ${tls.certFile}`,
          `keyfile ${tls.keyFile}`,
        );
      }
      writeFileSync(config, `${lines.join('\n')}\n`);
      return spawn('/usr/sbin/mosquitto', ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    },
    async (ports, child) => {
      for (const port of ports) await accepting(port, child, 5_000);
    },
  );
  return { ports, output, close: stopper(child) };
}
