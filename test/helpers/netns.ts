/**
 * Runs a Node script inside a network namespace of its own (`unshare -n`), with the
 * loopback interface up and the given sysctls set there. Kernel settings changed in the
 * namespace never touch the host's. Needs root (or CAP_SYS_ADMIN).
 */
import { execFileSync, spawn } from 'node:child_process';

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
  /** Kill the child after this many ms. Default 60 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

let cached: string | undefined | null = null;

/**
 * Why namespaces cannot be used here, or undefined if they can: checks `id -u` is 0 and
 * that `unshare -n` can bring loopback up.
 */
export function netnsUnavailableReason(): string | undefined {
  if (cached !== null) return cached;
  try {
    const uid = execFileSync('id', ['-u'], { encoding: 'utf8' }).trim();
    if (uid !== '0') {
      cached = `not root (id -u is ${uid}): cannot create a network namespace`;
      return cached;
    }
    execFileSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'pipe', timeout: 10_000 });
    cached = undefined;
  } catch (e) {
    cached = `unshare -n with 'ip link set lo up' failed: ${(e as Error).message.split('\n')[0]}`;
  }
  return cached;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** Runs `node [nodeArgs] script ...args` in a new network namespace. */
export function runInNetns(script: string, args: string[] = [], options: NetnsOptions = {}): Promise<NetnsResult> {
  const setup = ['ip link set lo up'];
  for (const [name, value] of Object.entries(options.sysctls ?? {})) {
    if (!/^[a-z0-9_.]+$/i.test(name)) throw new Error(`bad sysctl name ${name}`);
    setup.push(`printf '%s\\n' ${quote(String(value))} > /proc/sys/${name.replaceAll('.', '/')}`);
  }
  const nodeArgs = options.nodeArgs ?? (script.endsWith('.ts') ? ['--import', 'tsx'] : []);
  const shell = `${setup.join(' && ')} && exec "$0" "$@"`;
  const child = spawn('unshare', ['-n', '--', 'sh', '-c', shell, process.execPath, ...nodeArgs, script, ...args], {
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
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
