/**
 * Running the `porter` command in tests: the built bin in a child process (as a user
 * runs it), optionally inside a network namespace of its own with sysctls and limits
 * set there only. Also the JSON line it prints last.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { netnsUnavailableReason } from '../helpers/netns.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = fileURLToPath(new URL('../../packages/cli/bin/porter.js', import.meta.url));

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Called with the child once it started (to signal it, say). */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

function collect(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
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

/** Runs `porter ...args` with this Node, stdout and stderr piped (not a terminal). */
export function porter(args: string[], options: RunOptions = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? { ...process.env, NO_COLOR: '1' },
  });
  options.onSpawn?.(child);
  return collect(child, options.timeoutMs ?? 90_000);
}

export interface NetnsRunOptions extends RunOptions {
  /** sysctl (dotted name) to value, written inside the namespace before the command runs. */
  sysctls?: Record<string, string | number>;
  /** Shell commands run inside the namespace first (`ulimit -Sn 1000`, ...). */
  setup?: string[];
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `node <script> ...args` (the porter bin by default) in a new network namespace
 * with loopback up. Fails the test when namespaces cannot be made here (never a pass).
 */
export function inNetns(
  t: ExecutionContext,
  args: string[],
  options: NetnsRunOptions & { script?: string } = {},
): Promise<Run> {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) {
    t.fail(`this test needs a network namespace of its own: ${reason}`);
    throw new Error(reason);
  }
  const setup = ['ip link set lo up'];
  for (const [name, value] of Object.entries(options.sysctls ?? {})) {
    if (!/^[a-z0-9_.-]+$/i.test(name)) throw new Error(`bad sysctl name ${name}`);
    setup.push(`printf '%s\\n' ${quote(String(value))} > /proc/sys/${name.replaceAll('.', '/')}`);
  }
  setup.push(...(options.setup ?? []));
  const child = spawn(
    'unshare',
    [
      '-n',
      '--',
      'sh',
      '-c',
      `${setup.join(' && ')} && exec "$0" "$@"`,
      process.execPath,
      options.script ?? bin,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? { ...process.env, NO_COLOR: '1' } },
  );
  options.onSpawn?.(child);
  return collect(child, options.timeoutMs ?? 90_000);
}

/** The last line of `stdout`, parsed as JSON. */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`the last line of stdout is not JSON: ${JSON.stringify(line)}\n--- stdout:\n${stdout}`);
  }
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

/** The JSON report `porter hold --json` prints (the fields the tests read). */
export interface HoldJson {
  targets: string[];
  tls: boolean;
  count: number;
  attempted: number;
  opened: number;
  failed: number;
  errors: Record<string, number>;
  dropped: number;
  rate_per_sec: number;
  connect_p50_ms: number | null;
  connect_p99_ms: number | null;
  connect_histogram: { le: number | '+Inf'; count: number }[];
  held_ms: number;
  pools: { remote: string; local: string; in_use: number; aging: number; free: number }[];
  interrupted: boolean;
}
