/**
 * TCP servers for tests, each group in a child process of its own, so that the sockets
 * a test opens against them do not share the test's event loop or file descriptors.
 *
 * Modes:
 * - 'echo': accepts and echoes; ends its side when the client ends.
 * - 'close-first': accepts, then ends the connection at once (the server closes first).
 * - 'reset-first': accepts, then resets the connection (RST from the server) when the
 *   client's first data arrives: after the client has seen its connect complete. (A
 *   reset at accept can reach the client before it looks, and the connect then fails
 *   with ECONNRESET, as net.connect's does.)
 * - 'no-accept': listens with a tiny backlog and never accepts (the child's event loop
 *   is blocked), so once the accept queue is full further SYNs are dropped and a
 *   connect stays pending. See {@link fillAcceptQueue}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';

export type ServerMode = 'echo' | 'close-first' | 'reset-first' | 'no-accept';

export interface ServerGroupOptions {
  /** How many listeners (each on a port the kernel chose). Default 1. */
  count?: number;
  /** Address to listen on. Default '127.0.0.1'. */
  host?: string;
  mode?: ServerMode;
  /** listen() backlog. Default 511, or 1 for 'no-accept' (Node reads 0 as the default). */
  backlog?: number;
  /** For 'no-accept': how long the child blocks before it exits on its own. Default 120 s. */
  lifetimeMs?: number;
}

export interface ServerGroup {
  host: string;
  ports: number[];
  pid: number;
  /** Kills the child and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

// The child: listens, prints one JSON line with its ports, then serves. It exits when
// its stdin closes (the parent went away) or on SIGTERM.
const CHILD = String.raw`
const net = require('node:net');
const [mode, host, count, backlog, lifetime] = JSON.parse(process.argv[1]);
const servers = [];
let listening = 0;
function onConnection(socket) {
  socket.on('error', () => {});
  if (mode === 'echo') socket.pipe(socket);
  else if (mode === 'close-first') socket.end();
  else if (mode === 'reset-first') socket.once('data', () => socket.resetAndDestroy());
}
for (let i = 0; i < count; i++) {
  const server = net.createServer(onConnection);
  server.on('error', (e) => { process.stderr.write(String(e) + '\n'); process.exit(3); });
  server.listen({ host, port: 0, backlog }, () => {
    if (++listening < count) return;
    process.stdout.write(JSON.stringify({ ports: servers.map((s) => s.address().port) }) + '\n');
    if (mode === 'no-accept') {
      // Block the event loop: nothing is ever accepted.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, lifetime);
      process.exit(0);
    }
  });
  servers.push(server);
}
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

/** Starts `count` listeners in one child process and returns their ports. */
export async function startServers(options: ServerGroupOptions = {}): Promise<ServerGroup> {
  const mode = options.mode ?? 'echo';
  const host = options.host ?? '127.0.0.1';
  const count = options.count ?? 1;
  const backlog = options.backlog ?? (mode === 'no-accept' ? 1 : 511);
  const lifetime = options.lifetimeMs ?? 120_000;
  const child = spawn(process.execPath, ['-e', CHILD, JSON.stringify([mode, host, count, backlog, lifetime])], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ports = await readReady(child);
  let stopping: Promise<void> | undefined;
  return {
    host,
    ports,
    pid: child.pid as number,
    stop() {
      if (stopping === undefined) {
        stopping = (async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        })();
      }
      return stopping;
    },
  };
}

function readReady(child: ChildProcess): Promise<number[]> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`server child did not start: ${err}`)), 10_000);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(out.slice(0, nl)) as { ports: number[] }).ports);
        } catch (e) {
          fail(e as Error);
        }
      }
    });
    child.once('exit', (code, signal) => fail(new Error(`server child exited (${code ?? signal}): ${err}`)));
  });
}

/**
 * Opens plain connections to a 'no-accept' listener until one stays pending (its SYN
 * dropped because the accept queue is full). Returns the sockets opened; destroy them
 * when done. Throws if the queue never fills within `max` connections.
 */
export async function fillAcceptQueue(host: string, port: number, max = 16, settleMs = 250): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < max; i++) {
    const socket = netConnect({ host, port });
    socket.on('error', () => {});
    sockets.push(socket);
    const connected = await new Promise<boolean>((resolve) => {
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

/** Whether every port of [first, first + size) can be listened on at `host` now. */
async function blockIsFree(host: string, first: number, size: number): Promise<boolean> {
  const servers = await Promise.all(
    Array.from(
      { length: size },
      (_, i) =>
        new Promise<ReturnType<typeof createServer> | undefined>((resolve) => {
          const server = createServer();
          server.once('error', () => resolve(undefined));
          server.listen({ host, port: first + i, exclusive: true }, () => resolve(server));
        }),
    ),
  );
  await Promise.all(
    servers.map((s) => (s === undefined ? undefined : new Promise<void>((resolve) => s.close(() => resolve())))),
  );
  return servers.every((s) => s !== undefined);
}

/** The kernel's ephemeral range here (net.ipv4.ip_local_port_range). */
export function ephemeralRange(): [number, number] {
  const [first, last] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [first as number, last as number];
}

/** The ports of net.ipv4.ip_local_reserved_ports ("8080,9000-9010"). */
function reservedPorts(): Set<number> {
  const reserved = new Set<number>();
  for (const part of readFileSync('/proc/sys/net/ipv4/ip_local_reserved_ports', 'utf8').trim().split(',')) {
    if (part === '') continue;
    const [a, b = a] = part.split('-').map(Number) as [number, number?];
    for (let p = a; p <= b; p++) reserved.add(p);
  }
  return reserved;
}

/**
 * A block of `size` consecutive ports outside the kernel's ephemeral range and its
 * reserved ports (so the kernel never hands them out by itself, and porter binds them
 * explicitly), on which nothing listens now. Picked at random, so that test files
 * running at the same time rarely share one.
 */
export async function findFreePortBlock(size: number, hosts: string[] = ['0.0.0.0']): Promise<[number, number]> {
  const [ephemeralFirst, ephemeralLast] = ephemeralRange();
  const reserved = reservedPorts();
  // Below the ephemeral range from 10,000 (clear of the usual services), else above it.
  const spans = [
    [10_000, ephemeralFirst - 1],
    [Math.max(10_000, ephemeralLast + 1), 65_535],
  ].filter(([lo, hi]) => (hi as number) - (lo as number) + 1 >= size) as [number, number][];
  if (spans.length === 0) throw new Error(`no room for ${size} ports outside ${ephemeralFirst}-${ephemeralLast}`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const [lo, hi] = spans[attempt % spans.length] as [number, number];
    const first = lo + Math.floor(Math.random() * (hi - lo + 2 - size));
    if (Array.from({ length: size }, (_, i) => first + i).some((p) => reserved.has(p))) continue;
    let free = true;
    for (const host of hosts) {
      if (!(await blockIsFree(host, first, size))) {
        free = false;
        break;
      }
    }
    if (free) return [first, first + size - 1];
  }
  throw new Error(`no free block of ${size} ports found`);
}

/** Resolves when `socket` emits 'close' (at once if it has closed already). */
export function closed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Ends `socket` (this side closes first) and waits for 'close'. */
export async function endAndWait(socket: Socket): Promise<void> {
  const done = closed(socket);
  socket.end();
  await done;
}

/** Destroys every socket and waits for them all to close. */
export async function destroyAll(sockets: Iterable<Socket>): Promise<void> {
  const list = [...sockets];
  const done = Promise.all(list.map(closed));
  for (const s of list) s.destroy();
  await done;
}

/**
 * An array for the sockets a test opens: at the test's teardown they are destroyed, then
 * `servers` stop.
 */
export function closeAtTeardown(t: ExecutionContext, servers: ServerGroup): Socket[] {
  const sockets: Socket[] = [];
  t.teardown(async () => {
    await destroyAll(sockets);
    await servers.stop();
  });
  return sockets;
}

/** Sleeps `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
