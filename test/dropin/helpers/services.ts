/**
 * Real servers for the drop-in tests, each started on a free loopback port in a
 * temporary directory and stopped by the test: Mosquitto (TCP and TLS listeners, a
 * restart on the same ports), PostgreSQL (Debian's binaries, initdb as the 'postgres'
 * user when run as root) and redis-server. A missing program skips the test where it is
 * missing, but fails it under CI=true: a server that is not there never counts as a pass.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../../tls/helpers/servers.js';

/** Where a program is, or undefined. */
export function which(program: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', ...extra]) {
    const path = join(dir, program);
    if (dir !== '' && existsSync(path)) return path;
  }
  return undefined;
}

/** Debian's PostgreSQL binaries (the newest installed version), or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/**
 * Whether the tests of a file can run: undefined if every program is there, else why
 * not. Under CI=true a missing program is an error (the test fails), never a skip.
 */
export function missing(programs: Record<string, string | undefined>): string | undefined {
  const absent = Object.entries(programs)
    .filter(([, path]) => path === undefined)
    .map(([name]) => name);
  if (absent.length === 0) return undefined;
  const why = `not installed: ${absent.join(', ')} (bash scripts/setup-system.sh installs them)`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function accepting(port: number, child: ChildProcess | undefined, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`exited (${child.exitCode ?? child.signalCode})`);
    }
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

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A server process the test drives. */
export interface Service {
  port: number;
  /** Everything the process printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Remote ports of the connections a Mosquitto log reports ('New connection from h:p on port x.'). */
export function mosquittoClientPorts(log: string, listener: number): number[] {
  const ports: number[] = [];
  for (const m of log.matchAll(/New connection from [^ ]*?:(\d+) on port (\d+)/g)) {
    if (Number(m[2]) === listener) ports.push(Number(m[1]));
  }
  return ports;
}

export interface Mosquitto {
  tcpPort: number;
  tlsPort: number;
  output(): string;
  /** Stops the broker (SIGTERM: it saves its persistent sessions). */
  stop(): Promise<void>;
  /** Starts it again on the same ports, with the sessions it saved. */
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Mosquitto with a plain listener and a TLS one on 127.0.0.1, persistence in a
 * temporary directory (sessions and queued QoS 1 messages survive a restart), and a log
 * of connections on stderr.
 */
export async function startMosquitto(tls: { caFile: string; certFile: string; keyFile: string }): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'porter-mosquitto-'));
  const tcpPort = await freePort();
  let tlsPort = await freePort();
  while (tlsPort === tcpPort) tlsPort = await freePort();
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    `${[
      `user ${userInfo().username}`,
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 0',
      'log_dest stderr',
      'log_type all',
      'max_keepalive 600',
      `listener ${tcpPort} 127.0.0.1`,
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${tls.caFile}`,
      `certfile ${tls.certFile}`,
      `keyfile ${tls.keyFile}`,
    ].join('\n')}\n`,
  );
  let log = '';
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn(which('mosquitto') ?? 'mosquitto', ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    c.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    try {
      await accepting(tcpPort, c, 10_000);
      await accepting(tlsPort, c, 10_000);
    } catch (err) {
      await stop(c, 'SIGKILL');
      throw new Error(`mosquitto did not start: ${(err as Error).message}\n${log}`);
    }
  };
  await start();
  return {
    tcpPort,
    tlsPort,
    output: () => log,
    stop: async () => {
      if (child !== undefined) await stop(child);
    },
    start,
    cleanup: async () => {
      if (child !== undefined) await stop(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * PostgreSQL from Debian's binaries: `initdb` in a temporary directory (trust
 * authentication, user `porter`), then `postgres` on 127.0.0.1 and a free port. As root
 * both run as the 'postgres' user, since PostgreSQL refuses to run as root.
 */
export async function startPostgres(bin: string): Promise<Service & { user: string; database: string }> {
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'porter-pg-'));
  const data = join(dir, 'data');
  const run = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  if (asRoot) {
    const pg = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const group = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(dir, Number(pg), Number(group));
    chmodSync(dir, 0o700);
  }
  const [initdb, initArgs] = run('initdb', ['-D', data, '-U', 'porter', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  execFileSync(initdb, initArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const [postgres, args] = run('postgres', [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      '-c',
      'log_connections=on',
    ]);
    const child = spawn(postgres, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    try {
      await accepting(port, child, 20_000);
      // It accepts before it is ready ('the database system is starting up').
      if (!(await eventually(() => log.includes('ready to accept connections'), 20_000))) {
        throw new Error('not ready after 20 s');
      }
      return {
        port,
        user: 'porter',
        database: 'postgres',
        output: () => log,
        stop: async () => {
          await stop(child, 'SIGINT');
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastError = new Error(`postgres did not start: ${(err as Error).message}\n${log}`);
      await stop(child, 'SIGKILL');
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/** redis-server on 127.0.0.1 and a free port, nothing saved. */
export async function startRedis(program: string): Promise<Service> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(
      program,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    try {
      await accepting(port, child, 10_000);
      return { port, output: () => log, stop: () => stop(child) };
    } catch (err) {
      lastError = new Error(`redis-server did not start: ${(err as Error).message}\n${log}`);
      await stop(child, 'SIGKILL');
    }
  }
  throw lastError;
}

/** Polls `check` until it is true or `ms` passed; returns its last answer. */
export async function eventually(check: () => boolean, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await delay(10);
  }
  return true;
}
