// @ts-check
/**
 * Running a program to its end in a child process and collecting what it printed, for
 * tests and benchmarks; and the JSON line a test's child prints last.
 */
import { spawn } from 'node:child_process';

/**
 * @typedef {object} RunResult
 * @property {number | null} code The exit code; null when a signal ended the child or it
 *   could not be started.
 * @property {NodeJS.Signals | null} signal
 * @property {string} stdout
 * @property {string} stderr What it printed there; also why it could not be started.
 * @property {boolean} timedOut Whether it was killed (SIGKILL) after `timeoutMs`.
 */

/**
 * @typedef {object} RunOptions
 * @property {string} [cwd]
 * @property {NodeJS.ProcessEnv} [env] Default: this process's.
 * @property {number} [timeoutMs] Kills the child (SIGKILL) after this long. Default 10 minutes.
 * @property {boolean} [echo] Also copies the child's stderr to this process's as it comes.
 * @property {import('node:child_process').StdioOptions} [stdio] Default: stdin ignored,
 *   stdout and stderr collected.
 * @property {(child: import('node:child_process').ChildProcess) => void} [onSpawn] Called
 *   with the child once it started (to signal it, say).
 */

/**
 * Runs `command ...args` to its end. Never rejects: a program that cannot be started
 * resolves with code null and the reason in `stderr`.
 * @param {string} command @param {readonly string[]} args @param {RunOptions} [options]
 * @returns {Promise<RunResult>}
 */
export function run(command, args, options = {}) {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
  });
  options.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.on('data', (/** @type {Buffer} */ d) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (/** @type {Buffer} */ d) => {
    stderr += d.toString();
    if (options.echo === true) process.stderr.write(d);
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 600_000);
  return new Promise((resolve) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${e.message}`, timedOut });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * The last line of `stdout`, parsed as JSON; throws, quoting stdout, when it is not JSON.
 * @template [T=Record<string, unknown>]
 * @param {string} stdout
 * @returns {T}
 */
export function lastJson(stdout) {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the last line of stdout is not JSON: ${JSON.stringify(line)}\n--- stdout:\n${stdout}`);
  }
}
