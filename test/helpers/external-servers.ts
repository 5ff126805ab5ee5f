/**
 * Servers that are programs of their own, each in its own process on free loopback ports
 * (found by binding port 0, retried on a collision): `openssl s_server`, Mosquitto,
 * PostgreSQL (Debian's binaries), redis-server and Verdaccio (an npm registry); and the
 * machinery they share (spawnOnFreePorts, accepting, stop), which prometheus.ts uses too.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { which } from './programs.js';
import { delay, eventually } from './wait.js';

/** A server that is a program of its own. */
export interface External {
  ports: number[];
  /** Everything the process printed so far. */
  output(): string;
  /** Stops it (SIGTERM, SIGKILL after 5 s) and removes what it wrote. */
  close(): Promise<void>;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function accepting(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
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

/** Stops `child` with `signal` (SIGKILL after 5 s) and waits for it to exit. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a process that listens on the `count` ports it is given (`ports`: those, or
 * free ones), retrying with other free ports on a collision. `ready` resolves once it
 * serves (it reads what the process printed so far with `output`).
 */
export async function spawnOnFreePorts(
  count: number,
  start: (ports: number[]) => ChildProcess,
  ready: (ports: number[], child: ChildProcess, output: () => string) => Promise<void>,
  ports?: number[],
): Promise<{ ports: number[]; child: ChildProcess; output: () => string }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (ports === undefined ? 5 : 1); attempt++) {
    const chosen = ports === undefined ? [] : [...ports];
    while (chosen.length < count) {
      const p = await freePort();
      if (!chosen.includes(p)) chosen.push(p);
    }
    const child = start(chosen);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    try {
      await ready(chosen, child, () => output);
      return { ports: chosen, child, output: () => output };
    } catch (err) {
      lastError = new Error(`${(err as Error).message}: ${output}`);
      await stop(child, 'SIGKILL');
    }
  }
  throw lastError;
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
  return { ports, output, close: () => stop(child) };
}

export interface MosquittoOptions {
  /** How many TLS listeners (their ports: `ports`). Default 1. */
  tlsListeners?: number;
  /** How many plain TCP listeners (their ports: `tcpPorts`). Default 0. */
  tcpListeners?: number;
  /** Keep sessions and queued QoS 1 messages across a restart. Default false. */
  persistence?: boolean;
}

export interface Mosquitto extends External {
  /** The ports of its plain TCP listeners (`ports` are its TLS listeners'). */
  tcpPorts: number[];
  /** Stops the broker (SIGTERM: it saves its persistent sessions). */
  stop(): Promise<void>;
  /** Starts it again on the same ports, with the sessions it saved. */
  start(): Promise<void>;
}

/**
 * Mosquitto on 127.0.0.1 with TLS listeners (the given certificates) and plain ones,
 * anonymous access, its files in a temporary directory, and a log of every connection
 * on stderr (see {@link mosquittoClientPorts}).
 */
export async function startMosquitto(
  tls: { caFile: string; certFile: string; keyFile: string },
  options: MosquittoOptions = {},
): Promise<Mosquitto> {
  const tlsListeners = options.tlsListeners ?? 1;
  const tcpListeners = options.tcpListeners ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'porter-mosquitto-'));
  const config = join(dir, 'mosquitto.conf');
  const program = which('mosquitto') ?? 'mosquitto';
  const launch = (ports: number[]): ChildProcess => {
    const lines = [
      // Run as the user who started it (as root it would switch to 'mosquitto', who
      // cannot read the test's private temporary directory).
      `user ${userInfo().username}`,
      'per_listener_settings false',
      'allow_anonymous true',
      ...(options.persistence === true
        ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 0']
        : ['persistence false']),
      'log_dest stderr',
      'log_type all',
      'max_keepalive 600',
    ];
    ports.forEach((port, i) => {
      lines.push(`listener ${port} 127.0.0.1`);
      if (i >= tcpListeners) {
        lines.push(`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`);
      }
    });
    writeFileSync(config, `${lines.join('\n')}\n`);
    return spawn(program, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const ready = async (ports: number[], child: ChildProcess): Promise<void> => {
    for (const port of ports) await accepting(port, child, 10_000);
  };
  let { ports, child, output } = await spawnOnFreePorts(tcpListeners + tlsListeners, launch, ready);
  let log = '';
  return {
    tcpPorts: ports.slice(0, tcpListeners),
    ports: ports.slice(tcpListeners),
    output: () => log + output(),
    stop: () => stop(child),
    async start() {
      await stop(child);
      log += output();
      ({ child, output } = await spawnOnFreePorts(ports.length, launch, ready, ports));
    },
    async close() {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Remote ports of the connections a Mosquitto log reports ('New connection from h:p on port x.'). */
export function mosquittoClientPorts(log: string, listener: number): number[] {
  const ports: number[] = [];
  for (const m of log.matchAll(/New connection from [^ ]*?:(\d+) on port (\d+)/g)) {
    if (Number(m[2]) === listener) ports.push(Number(m[1]));
  }
  return ports;
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
 * PostgreSQL from Debian's binaries (`bin`): `initdb` in a temporary directory (trust
 * authentication, user `porter`), then `postgres` on 127.0.0.1 and a free port. As root
 * both run as the 'postgres' user, since PostgreSQL refuses to run as root.
 */
export async function startPostgres(bin: string): Promise<External & { user: string; database: string }> {
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'porter-pg-'));
  const data = join(dir, 'data');
  const command = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  if (asRoot) {
    const pg = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    const group = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
    chownSync(dir, Number(pg), Number(group));
    chmodSync(dir, 0o700);
  }
  const [initdb, initArgs] = command('initdb', ['-D', data, '-U', 'porter', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  execFileSync(initdb, initArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const settings = ['listen_addresses=127.0.0.1', `unix_socket_directories=${dir}`, 'fsync=off', 'log_connections=on'];
  try {
    const { ports, child, output } = await spawnOnFreePorts(
      1,
      ([port]) => {
        const [postgres, args] = command('postgres', [
          '-D',
          data,
          '-p',
          String(port),
          ...settings.flatMap((s) => ['-c', s]),
        ]);
        return spawn(postgres, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      },
      async ([port], child, output) => {
        await accepting(port as number, child, 20_000);
        // It accepts before it is ready ('the database system is starting up').
        if (!(await eventually(() => output().includes('ready to accept connections'), once(child, 'exit')))) {
          throw new Error('postgres exited before it was ready');
        }
      },
    );
    return {
      ports,
      user: 'porter',
      database: 'postgres',
      output,
      async close() {
        await stop(child, 'SIGINT');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** redis-server (`program`) on 127.0.0.1 and a free port, nothing saved. */
export async function startRedis(program: string): Promise<External> {
  const { ports, child, output } = await spawnOnFreePorts(
    1,
    ([port]) =>
      spawn(
        program,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    async ([port], child) => {
      await accepting(port as number, child, 10_000);
    },
  );
  return { ports, output, close: () => stop(child) };
}

/** Verdaccio: an npm registry of the test's own. */
export interface Verdaccio extends External {
  /** Its URL, `http://127.0.0.1:<port>/`. */
  url: string;
  /** Creates a user (as `npm adduser` does) and returns the token Verdaccio issued. */
  addUser(name: string, password: string): Promise<string>;
}

/**
 * Verdaccio (the root's dev dependency, node_modules/verdaccio) on 127.0.0.1, its storage,
 * users and configuration in a temporary directory. `@porter/*` packages are served from
 * its storage only: never looked up on the public registry, so a name missing here is a
 * 404. Every other package comes through its uplink, the public npm registry, as with a
 * company's registry. Anyone may read; publishing takes a token.
 */
export async function startVerdaccio(): Promise<Verdaccio> {
  const dir = mkdtempSync(join(tmpdir(), 'porter-verdaccio-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${join(dir, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${join(dir, 'htpasswd')}`,
      '    max_users: 10',
      'uplinks:',
      '  npmjs:',
      '    url: https://registry.npmjs.org/',
      'packages:',
      "  '@porter/*':",
      '    access: $all',
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      '    proxy: npmjs',
      'web:',
      '  enable: false',
      'middlewares:',
      '  audit:',
      '    enabled: false',
      'log: { type: stdout, format: json, level: warn }',
      '',
    ].join('\n'),
  );
  const program = join(
    fileURLToPath(new URL('../..', import.meta.url)),
    'node_modules',
    'verdaccio',
    'bin',
    'verdaccio',
  );
  const { ports, child, output } = await spawnOnFreePorts(
    1,
    ([port]) =>
      spawn(process.execPath, [program, '--config', config, '--listen', `127.0.0.1:${port}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    async ([port], child) => {
      await accepting(port as number, child, 30_000);
      const response = await fetch(`http://127.0.0.1:${port}/-/ping`);
      if (!response.ok) throw new Error(`GET /-/ping answered ${response.status}`);
    },
  );
  const url = `http://127.0.0.1:${ports[0]}/`;
  return {
    ports,
    url,
    output,
    async addUser(name, password) {
      const response = await fetch(`${url}-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, password, type: 'user', roles: [], date: new Date().toISOString() }),
      });
      const body = (await response.json()) as { token?: string; error?: string };
      if (response.status !== 201 || typeof body.token !== 'string') {
        throw new Error(`Verdaccio refused the user ${name} (${response.status}): ${JSON.stringify(body)}`);
      }
      return body.token;
    },
    async close() {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
