/**
 * Running the `porter` command in tests: the built bin in a child process (as a user
 * runs it), optionally inside a network namespace of its own with sysctls and limits
 * set there only; the JSON report of `porter hold`.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HoldReport } from '@porter/cli';
import type { ExecutionContext } from 'ava';
import { type NetnsOptions, netnsUnavailableReason, runInNetns } from './netns.mjs';
import { type RunOptions, type RunResult, run } from './run.mjs';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = fileURLToPath(new URL('../../packages/cli/bin/porter.js', import.meta.url));

/** Runs `porter ...args` with this Node, stdout and stderr piped (not a terminal). */
export function porter(
  args: string[],
  options: Pick<RunOptions, 'env' | 'timeoutMs' | 'onSpawn'> = {},
): Promise<RunResult> {
  return run(process.execPath, [bin, ...args], {
    env: options.env ?? { ...process.env, NO_COLOR: '1' },
    timeoutMs: options.timeoutMs ?? 90_000,
    onSpawn: options.onSpawn,
  });
}

/**
 * Runs `node <script> ...args` (the porter bin by default) in a new network namespace
 * with loopback up (see netns.mjs). Fails the test when namespaces cannot be made here
 * (never a pass).
 */
export function inNetns(
  t: ExecutionContext,
  args: string[],
  options: Omit<NetnsOptions, 'nodeArgs' | 'hosts'> & { script?: string } = {},
): Promise<RunResult> {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) {
    t.fail(`this test needs a network namespace of its own: ${reason}`);
    throw new Error(reason);
  }
  return runInNetns(options.script ?? bin, args, {
    ...options,
    env: options.env ?? { ...process.env, NO_COLOR: '1' },
    timeoutMs: options.timeoutMs ?? 90_000,
  });
}

/** Whether `tool` is on the PATH; fails the test (never a pass) when it is not. */
export function requireTool(t: ExecutionContext, tool: string, installedBy = 'scripts/setup-system.sh'): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
  } catch {
    t.fail(`${tool} is not installed (${installedBy} installs it)`);
    throw new Error(`${tool} missing`);
  }
}

/** The JSON report `porter hold --json` prints: @porter/cli's own type of it. */
export type HoldJson = HoldReport;
