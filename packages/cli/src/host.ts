/**
 * Host settings porter does not expose, read from /proc: TIME_WAIT reuse and TCP
 * timestamps (of this process's network namespace) and the open-file limits. The port
 * ranges come from porter itself (`hostPorts()` of @porter/core). Read-only; a setting
 * that is missing (another kernel, no /proc) reads as undefined.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';

/** The settings `porter doctor` reports. */
export interface HostSettings {
  /** Linux release (uname -r). */
  kernel: string;
  /** net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only. */
  tcpTwReuse: number | undefined;
  /** net.ipv4.tcp_timestamps: 0 off, 1 on, 2 on without per-connection offsets. */
  tcpTimestamps: number | undefined;
  /** This process's RLIMIT_NOFILE. */
  openFiles: { soft: number | 'unlimited'; hard: number | 'unlimited' } | undefined;
  /** fs.nr_open: the most a hard limit can be raised to. */
  nrOpen: number | undefined;
  /** fs.file-max: descriptors the whole system may open. */
  fileMax: number | undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const sysctlPath = (name: string): string => `/proc/sys/${name.replaceAll('.', '/')}`;

function sysctlNumber(name: string): number | undefined {
  const text = read(sysctlPath(name));
  if (text === undefined) return undefined;
  const n = Number(text.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** The "Max open files" line of /proc/self/limits. */
function openFiles(): HostSettings['openFiles'] {
  const text = read('/proc/self/limits');
  const line = text?.split('\n').find((l) => l.startsWith('Max open files'));
  const fields = line?.slice('Max open files'.length).trim().split(/\s+/);
  if (fields === undefined || fields.length < 2) return undefined;
  const value = (s: string): number | 'unlimited' => (s === 'unlimited' ? 'unlimited' : Number(s));
  return { soft: value(fields[0] as string), hard: value(fields[1] as string) };
}

/** Reads every setting now. */
export function readHostSettings(): HostSettings {
  return {
    kernel: release(),
    tcpTwReuse: sysctlNumber('net.ipv4.tcp_tw_reuse'),
    tcpTimestamps: sysctlNumber('net.ipv4.tcp_timestamps'),
    openFiles: openFiles(),
    nrOpen: sysctlNumber('fs.nr_open'),
    fileMax: sysctlNumber('fs.file-max'),
  };
}

/** This process's open-file limits and fs.nr_open alone (what `porter hold` checks its count against). */
export function readOpenFileLimits(): Pick<HostSettings, 'openFiles' | 'nrOpen'> {
  return { openFiles: openFiles(), nrOpen: sysctlNumber('fs.nr_open') };
}

/** How many ports of [first, last] fall in `ranges`. */
export function overlap(first: number, last: number, ranges: readonly [number, number][]): number {
  let n = 0;
  for (const [a, b] of ranges) {
    const lo = Math.max(first, a);
    const hi = Math.min(last, b);
    if (hi >= lo) n += hi - lo + 1;
  }
  return n;
}
