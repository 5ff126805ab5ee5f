/**
 * Tests that need something a machine may lack: root for network namespaces, a program
 * such as promtool, perl or a server, an IPv6 loopback address. Where it is missing, such a test is
 * declared skipped, so ava counts and lists it as skipped, never as passed; in CI
 * (`CI=true`, set by .ci/run, which installs everything) it is declared as a test that
 * fails and names what is missing.
 */
import { readFileSync } from 'node:fs';
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

// What programs are here: in programs.ts (which fixtures use too), and here with the rest.
export { commandMissing, programsMissing, which } from './programs.js';

/** Why ::1 cannot be used here (no IPv6 loopback address), or undefined if it can. */
export function ipv6LoopbackMissing(): string | undefined {
  try {
    const lines = readFileSync('/proc/net/if_inet6', 'utf8').split('\n');
    return lines.some((l) => l.startsWith('00000000000000000000000000000001 ')) ? undefined : 'no ::1 on lo';
  } catch (e) {
    return `IPv6 is off (${(e as Error).message})`;
  }
}
