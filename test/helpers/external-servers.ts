/**
 * Servers that are programs of their own, each in its own process on free loopback ports
 * (found by binding port 0, retried on a collision): `openssl s_server` and Mosquitto.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { delay } from './sockets.js';

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
