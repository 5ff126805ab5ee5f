// @ts-check
/**
 * Runs a Node script inside a network namespace of its own (`unshare -n`), with the
 * loopback interface up and the given sysctls set there. Kernel settings changed in the
 * namespace never touch the host's, and nothing sent there leaves it: its only interface
 * is its own loopback. With `hosts`, the script also gets a mount namespace whose
 * /etc/hosts is that text. Needs root (or CAP_SYS_ADMIN). For tests and benchmarks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.mjs';

/**
 * @typedef {object} NetnsOptions
 * @property {Record<string, string | number>} [sysctls] sysctl name (dotted, as `sysctl`
 *   prints it) to value, set inside the namespace.
 * @property {string[]} [setup] Shell commands run inside the namespace before the script
 *   (`ulimit -Sn 1000`, ...).
 * @property {string[]} [nodeArgs] Node arguments before the script (default:
 *   ['--import', 'tsx'] for .ts, none otherwise).
 * @property {number} [timeoutMs] Kill the child after this many ms. Default 60 s.
 * @property {NodeJS.ProcessEnv} [env]
 * @property {string} [hosts] The text of /etc/hosts inside (a mount namespace of its
 *   own); the host's otherwise.
 * @property {boolean} [privateMounts] A mount namespace of its own too (its mounts
 *   private), for `setup` commands that mount over a file of /proc or /etc.
 * @property {boolean} [echo] Also copy the script's stderr to this process's as it comes.
 * @property {(child: import('node:child_process').ChildProcess) => void} [onSpawn]
 * @property {string[]} [prefix] A command node runs under, inside the namespace once it
 *   is set up (`['setpriv', '--bounding-set=-net_admin', ...]` to run without a
 *   capability).
 */

/** @type {Map<string, string | undefined>} */
const cached = new Map();

/**
 * Why namespaces cannot be used here, or undefined if they can: checks `id -u` is 0 and
 * that `unshare -n` can bring loopback up (with `mount`, that `unshare -mn` can also
 * bind-mount a file over /etc/hosts). Synchronous, so that a test file can declare its
 * tests skipped (see requirements.ts) when they cannot run.
 * @param {{ mount?: boolean }} [options]
 * @returns {string | undefined}
 */
export function netnsUnavailableReason(options = {}) {
  const key = options.mount === true ? 'mount' : 'net';
  if (cached.has(key)) return cached.get(key);
  let reason;
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
    reason = `${what} failed: ${/** @type {Error} */ (e).message.split('\n')[0]}`;
  }
  cached.set(key, reason);
  return reason;
}

/** @param {string} s */
const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `node [nodeArgs] script ...args` in a new network namespace.
 * @param {string} script @param {string[]} [args] @param {NetnsOptions} [options]
 * @returns {Promise<import('./run.mjs').RunResult>}
 */
export async function runInNetns(script, args = [], options = {}) {
  const setup = ['ip link set lo up'];
  for (const [name, value] of Object.entries(options.sysctls ?? {})) {
    if (!/^[a-z0-9_.-]+$/i.test(name)) throw new Error(`bad sysctl name ${name}`);
    setup.push(`printf '%s\\n' ${quote(String(value))} > /proc/sys/${name.replaceAll('.', '/')}`);
  }
  let dir;
  const mounts = options.hosts !== undefined || options.privateMounts === true;
  if (mounts && options.hosts === undefined) setup.push('mount --make-rprivate /');
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
  const unshare = mounts ? '-mn' : '-n';
  const command = [...(options.prefix ?? []), process.execPath, ...nodeArgs, script, ...args];
  try {
    return await run('unshare', [unshare, '--', 'sh', '-c', shell, ...command], {
      env: options.env ?? process.env,
      timeoutMs: options.timeoutMs ?? 60_000,
      echo: options.echo,
      onSpawn: options.onSpawn,
    });
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}
