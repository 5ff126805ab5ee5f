/**
 * Runs a Node script inside a network namespace of its own (`unshare -n`), with the
 * loopback interface up and the given sysctls set there. Kernel settings changed in the
 * namespace never touch the host's, and nothing sent there leaves it: its only interface
 * is its own loopback. With `hosts`, the script also gets a mount namespace whose
 * /etc/hosts is that text. Needs root (or CAP_SYS_ADMIN).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NetnsResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface NetnsOptions {
  /** sysctl name (dotted, as `sysctl` prints it) to value, set inside the namespace. */
  sysctls?: Record<string, string | number>;
  /** Extra node arguments before the script (default: ['--import', 'tsx'] for .ts). */
  nodeArgs?: string[];
  /** Commands run in the namespace (by sh) before node, after loopback is up. */
  setup?: string[];
  /** Kill the child after this many ms. Default 60 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** The text of /etc/hosts inside (a mount namespace of its own); the host's otherwise. */
  hosts?: string;
}

const cached = new Map<string, string | undefined>();

/**
 * Why namespaces cannot be used here, or undefined if they can: checks `id -u` is 0 and
 * that `unshare -n` can bring loopback up (with `mount`, that `unshare -mn` can also
 * bind-mount a file over /etc/hosts). Synchronous, so that a test file can declare its
 * tests skipped (see requirements.ts) when they cannot run.
 */
export function netnsUnavailableReason(options: { mount?: boolean } = {}): string | undefined {
  const key = options.mount === true ? 'mount' : 'net';
  if (cached.has(key)) return cached.get(key);
  let reason: string | undefined;
  try {
    const uid = execFileSync('id', ['-u'], { encoding: 'utf8' }).trim();
    if (uid !== '0') {
      reason = `not root (id -u is ${uid}): cannot create a network namespace`;
    } else if (options.mount === true) {
      execFileSync(
        'unshare',
        ['-mn', 'sh', '-c', 'ip link set lo up && mount --make-rprivate / && mount --bind /etc/hosts /etc/hosts'],
        { stdio: 'pipe', timeout: 10_000 },
      );
    } else {
      execFileSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'pipe', timeout: 10_000 });
    }
  } catch (e) {
    const what = options.mount === true ? 'unshare -mn with a bind mount' : "unshare -n with 'ip link set lo up'";
    reason = `${what} failed: ${(e as Error).message.split('\n')[0]}`;
  }
  cached.set(key, reason);
  return reason;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs `node [nodeArgs] script ...args` in a new network namespace. */
export function runInNetns(script: string, args: string[] = [], options: NetnsOptions = {}): Promise<NetnsResult> {
  const setup = ['ip link set lo up'];
  for (const [name, value] of Object.entries(options.sysctls ?? {})) {
    if (!/^[a-z0-9_.]+$/i.test(name)) throw new Error(`bad sysctl name ${name}`);
    setup.push(`printf '%s\\n' ${quote(String(value))} > /proc/sys/${name.replaceAll('.', '/')}`);
  }
  let dir: string | undefined;
  if (options.hosts !== undefined) {
    dir = mkdtempSync(join(tmpdir(), 'porter-netns-'));
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, options.hosts);
    // Private mounts first, so that the bind mount stays inside the namespace.
    setup.push(`mount --make-rprivate / && mount --bind ${quote(hostsFile)} /etc/hosts`);
  }
  setup.push(...(options.setup ?? []));
  const nodeArgs = options.nodeArgs ?? (script.endsWith('.ts') ? ['--import', 'tsx'] : []);
  const shell = `${setup.join(' && ')} && exec "$0" "$@"`;
  const unshare = options.hosts === undefined ? '-n' : '-mn';
  const child = spawn('unshare', [unshare, '--', 'sh', '-c', shell, process.execPath, ...nodeArgs, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The last line of `run`'s stdout, parsed as JSON (what the fixtures print). */
export function lastJsonLine<T>(run: NetnsResult): T {
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as T;
}
