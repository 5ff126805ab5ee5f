/**
 * Programs a test needs: whether one can run here, and where it is. Without ava (unlike
 * requirements.ts, which re-exports these), so that fixtures running in child processes
 * can use them and the helpers built on them (sockopts.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';

/** Why `command` cannot run here (`args` checks it works), or undefined if it can. */
export function commandMissing(command: string, args: string[] = ['--version']): string | undefined {
  const r = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  if (r.error !== undefined) return `${command}: ${r.error.message}`;
  return r.status === 0 ? undefined : `${command} ${args.join(' ')} exited ${r.status ?? r.signal}`;
}

/**
 * Where the system's `program` is (on the PATH, in /usr/sbin or /usr/bin, or in
 * `extra`), or undefined. Folders inside node_modules are passed over: ava runs with
 * node_modules/.bin on the PATH, whose `nft` (a dependency's) is not nftables'.
 */
export function which(program: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', ...extra]) {
    if (dir === '' || dir.split(sep).includes('node_modules')) continue;
    const path = join(dir, program);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/**
 * Why some of `programs` (name to where it is, from {@link which}) cannot be used here,
 * or undefined if every one is there.
 */
export function programsMissing(programs: Record<string, string | undefined>): string | undefined {
  const absent = Object.entries(programs)
    .filter(([, path]) => path === undefined)
    .map(([name]) => name);
  return absent.length === 0
    ? undefined
    : `not installed: ${absent.join(', ')} (scripts/setup-system.sh installs them)`;
}
