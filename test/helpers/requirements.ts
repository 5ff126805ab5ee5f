/**
 * Tests that need something a machine may lack: root for network namespaces, a program
 * such as promtool, perl or a server, an IPv6 loopback address. Where it is missing, such a test is
 * declared skipped, so ava counts and lists it as skipped, never as passed; in CI
 * (`CI=true`, set by .ci/run, which installs everything) it is declared as a test that
 * fails and names what is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';

/** Whether this run is CI's, where every requirement is installed. */
export const inCI = process.env.CI === 'true';

type Declare = (title: string, implementation: (t: ExecutionContext) => unknown) => void;

/**
 * The function to declare a test with that needs something: `missing` says what is
 * missing here, undefined if nothing is. With `serial`, the test runs serially.
 */
export function testIf(missing: string | undefined, options: { serial?: boolean } = {}): Declare {
  const declare = options.serial === true ? test.serial : test;
  if (missing === undefined) return (title, implementation) => declare(title, implementation);
  if (inCI) {
    return (title) =>
      declare(title, (t) => {
        t.fail(`required in CI (CI=true) but missing: ${missing}`);
      });
  }
  const skip = options.serial === true ? test.serial.skip : test.skip;
  return (title, implementation) => skip(`${title} [skipped: ${missing}]`, implementation);
}

/** Why `command` cannot run here (`args` checks it works), or undefined if it can. */
export function commandMissing(command: string, args: string[] = ['--version']): string | undefined {
  const r = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 });
  if (r.error !== undefined) return `${command}: ${r.error.message}`;
  return r.status === 0 ? undefined : `${command} ${args.join(' ')} exited ${r.status ?? r.signal}`;
}

/** Where `program` is (on the PATH, in /usr/sbin or /usr/bin, or in `extra`), or undefined. */
export function which(program: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', ...extra]) {
    const path = join(dir, program);
    if (dir !== '' && existsSync(path)) return path;
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

/** Why ::1 cannot be used here (no IPv6 loopback address), or undefined if it can. */
export function ipv6LoopbackMissing(): string | undefined {
  try {
    const lines = readFileSync('/proc/net/if_inet6', 'utf8').split('\n');
    return lines.some((l) => l.startsWith('00000000000000000000000000000001 ')) ? undefined : 'no ::1 on lo';
  } catch (e) {
    return `IPv6 is off (${(e as Error).message})`;
  }
}
