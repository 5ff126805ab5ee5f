/**
 * Private network namespaces for the benchmarks that change kernel settings: the parent
 * runs a script under `unshare -n` (test/helpers/netns.mjs, loopback up); the script sets
 * ip_local_port_range there, after checking that it really is in a namespace of its own
 * (the host's settings are never touched), and prints its result as one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { netnsUnavailableReason, runInNetns } from '../../test/helpers/netns.mjs';
import { lastJsonLine, tail } from './util.mjs';

const netnsId = () => readlinkSync('/proc/self/ns/net');

/**
 * Runs `script --child <json>` in a new network namespace, its stderr shown as it comes;
 * resolves to the JSON object the script printed last, or to { error } / { skipped }.
 */
export async function runInNamespace(script, config, { timeoutMs = 300_000 } = {}) {
  const why = netnsUnavailableReason();
  if (why !== undefined) return { skipped: why };
  const payload = JSON.stringify({ ...config, hostNetns: netnsId() });
  const res = await runInNetns(script, ['--child', payload], { timeoutMs, echo: true });
  const result = lastJsonLine(res.stdout);
  if (res.code !== 0 || !result) {
    return { error: `exit ${res.code}${res.timedOut ? ' (timed out)' : ''}: ${tail(res.stderr || res.stdout, 4)}` };
  }
  return result;
}

/** Inside the child: the port range set. Throws if still in the host's namespace. */
export function setupNamespace(hostNetns, range) {
  if (netnsId() === hostNetns) throw new Error('not in a private network namespace: refusing to change settings');
  if (range) {
    execFileSync('sysctl', ['-q', '-w', `net.ipv4.ip_local_port_range=${range[0]} ${range[1]}`]);
  }
}

/** The child's configuration when this process was started by runInNamespace, else null. */
export function childConfig() {
  const i = process.argv.indexOf('--child');
  return i === -1 ? null : JSON.parse(process.argv[i + 1]);
}

/**
 * When this process was started as the namespace side (`--child <config>`), runs
 * `child(config)`, prints its result as one JSON line and exits; returns false otherwise.
 */
export function runIfChild(child) {
  const config = childConfig();
  if (!config) return false;
  child(config).then(
    (out) => {
      process.stdout.write(`${JSON.stringify(out)}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
  return true;
}
