// @ts-check
/**
 * The kernel's TCP counters of this process's network namespace, as `nstat` reports
 * them: what shows a connect run distorted by a listener's overflowing accept queue
 * (ListenOverflows, ListenDrops) and by retransmitted SYNs (TCPSynRetrans: a connect
 * that waited a second or more). For tests (in a namespace of their own, so the counters
 * are theirs alone) and benchmarks.
 */
import { execFileSync } from 'node:child_process';

/** The counters read. */
export const NSTAT_COUNTERS = [
  'TcpExtListenDrops',
  'TcpExtListenOverflows',
  'TcpRetransSegs',
  'TcpExtTCPSynRetrans',
  // A retransmission that is a tail loss probe, and one the receiver reports as a
  // duplicate (DSACK): spurious, the first copy had arrived.
  'TcpExtTCPLossProbes',
  'TcpExtTCPDSACKRecv',
];

/**
 * Absolute values of the counters, or null when nstat is not there.
 * @returns {Record<string, number> | null}
 */
export function readNstat() {
  try {
    // -a absolute, -s do not touch nstat's history file, -z print zeros too.
    const out = execFileSync('nstat', ['-asz', ...NSTAT_COUNTERS], { encoding: 'utf8' });
    /** @type {Record<string, number>} */
    const values = {};
    for (const line of out.split('\n')) {
      const [name, value] = line.trim().split(/\s+/);
      if (name !== undefined && NSTAT_COUNTERS.includes(name)) values[name] = Number(value);
    }
    return values;
  } catch {
    return null;
  }
}

/**
 * after - before for each counter, or null.
 * @param {Record<string, number> | null} before @param {Record<string, number> | null} after
 * @returns {Record<string, number> | null}
 */
export function nstatDelta(before, after) {
  if (!before || !after) return null;
  /** @type {Record<string, number>} */
  const delta = {};
  for (const name of NSTAT_COUNTERS) delta[name] = (after[name] ?? 0) - (before[name] ?? 0);
  return delta;
}
