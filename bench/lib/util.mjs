/**
 * Small helpers shared by the benchmarks: order statistics, the JSON object a child
 * process printed last, the kernel's TCP counters (nstat, from test/helpers/nstat.mjs),
 * and formatting. (Running a child process: test/helpers/run.mjs.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// The kernel's TCP counters live with the test helpers (a test reads them too).
export { NSTAT_COUNTERS, nstatDelta, readNstat } from '../../test/helpers/nstat.mjs';

/** The q-quantile (0..1) of `values` by linear interpolation; NaN when empty. */
export function quantile(values, q) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (values) => quantile(values, 0.5);

/** a / b, or null when either side is missing or b is zero. */
export function ratio(a, b) {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) {
    return null;
  }
  return a / b;
}

/** Rounds to `digits` significant digits (numbers only; everything else unchanged). */
export function sig(value, digits = 4) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}

/** The last line of `text` that parses as a JSON object, or undefined. */
export function lastJsonLine(text) {
  const lines = text.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    if (!line.startsWith('{')) continue;
    try {
      const value = JSON.parse(line);
      if (value && typeof value === 'object') return value;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}

/** The last few lines of `text`, for error reports. */
export function tail(text, lines = 6) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** CPU time of this process's main thread so far, in microseconds (Linux: /proc). */
export function mainThreadCpuMicros() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return null;
  }
}

/** Reads a /proc/sys value, or null. */
export function readSysctl(path) {
  try {
    return execFileSync('cat', [`/proc/sys/${path}`], { encoding: 'utf8' })
      .trim()
      .replace(/\s+/g, ' ');
  } catch {
    return null;
  }
}

/** Prints a progress line on stderr (stdout's last line is the result). */
export function log(...parts) {
  process.stderr.write(`${parts.join(' ')}\n`);
}

/** Rotates `items` by `n` places: a different order each round. */
export function rotate(items, n) {
  const k = ((n % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
