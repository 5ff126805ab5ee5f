/**
 * Open files for `porter hold`: every connection is a descriptor, and a process cannot
 * hold more than its RLIMIT_NOFILE. Before any connect, the soft limit is raised to the
 * hard one where it is lower (as tcpkali does; Node itself does so at start, so this
 * matters when hold runs inside a process that lowered it), then a count that still
 * cannot fit is refused (exit 2) with the fix: more --workers, or a higher hard limit.
 *
 * Node has no setrlimit of its own; `prlimit --pid <own pid>` (util-linux) sets it on
 * this very process, which is what setrlimit would do.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { finite, fmt } from './doctor/ports.js';
import { readOpenFileLimits } from './host.js';
import { UsageCodes, UsageError } from './usage.js';

/** Descriptors left for Node, porter and the metrics server beside the connections. */
export const DESCRIPTOR_MARGIN = 64;

/** Descriptors this process has open now. */
export function descriptorsInUse(): number {
  try {
    return readdirSync('/proc/self/fd').length - 1; // less the one reading the directory
  } catch {
    return 32;
  }
}

function limits(): { soft: number; hard: number; nrOpen: number | undefined } | undefined {
  const settings = readOpenFileLimits();
  const files = settings.openFiles;
  if (files === undefined) return undefined;
  return { soft: finite(files.soft), hard: finite(files.hard), nrOpen: settings.nrOpen };
}

/** Raises this process's soft limit to `to` with prlimit; whether it worked. */
function raiseSoftLimit(to: number, hard: number): boolean {
  const value = (n: number): string => (Number.isFinite(n) ? String(n) : 'unlimited');
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${value(to)}:${value(hard)}`], {
    stdio: 'ignore',
    timeout: 10_000,
  });
  return r.status === 0;
}

/**
 * Checks that `connections` per process fit the open-file limit, raising the soft limit to
 * the hard one first when needed. Returns the soft limit it was raised from, if it was.
 * Throws ERR_PORTER_FD_LIMIT (a usage error: exit 2) when they cannot fit.
 */
export function ensureDescriptors(connections: number, count: number, workers: number): number | undefined {
  const current = limits();
  if (current === undefined) return undefined; // no /proc: nothing to check against
  const inUse = descriptorsInUse();
  const needed = connections + inUse + DESCRIPTOR_MARGIN;
  let raisedFrom: number | undefined;
  if (needed > current.soft && current.soft < current.hard && raiseSoftLimit(current.hard, current.hard)) {
    raisedFrom = current.soft;
    current.soft = limits()?.soft ?? current.soft;
  }
  if (needed <= current.soft) return raisedFrom;
  const perProcess = current.soft - inUse - DESCRIPTOR_MARGIN;
  const suggested = perProcess > 0 ? Math.ceil(count / perProcess) : undefined;
  const raise = Math.min(Math.ceil((needed + 1024) / 1024) * 1024, current.nrOpen ?? Number.POSITIVE_INFINITY);
  const where =
    workers > 1
      ? `${fmt(connections)} connections in each of ${workers} processes`
      : `${fmt(connections)} connections in one process`;
  throw new UsageError(
    UsageCodes.FD_LIMIT,
    workers > 1 ? '--workers' : '--count',
    `--count ${fmt(count)} needs ${fmt(needed)} open files per process (${where}, and ${fmt(needed - connections)} for Node, porter and the rest); the open-file limit is ${fmt(current.soft)} (hard ${fmt(current.hard)})`,
    `${suggested !== undefined && suggested > workers ? `split the run over processes, each with its own limit: --workers ${suggested}; or ` : ''}raise the hard limit, as root, in the shell that starts porter: ulimit -Hn ${raise} && ulimit -Sn ${raise} (or LimitNOFILE=${raise} in a systemd unit)`,
  );
}
