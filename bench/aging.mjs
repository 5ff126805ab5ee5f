/**
 * Aging precision: a Porter with a one-port range; the lease is released into aging,
 * then (from 10 ms before the deadline) allocate() is polled in a tight loop until the
 * port comes back. How long after its deadline (release + agingMs) it is handed out
 * again: p50, p99, max over samples; early returns (before the deadline) are counted,
 * and would be a bug. Beside it, how long after the deadline the last refused poll was
 * asked: that part of the lateness is the core's, the rest is this process not running.
 *
 * Run directly: node bench/aging.mjs [samples].
 */
import { fileURLToPath } from 'node:url';
import { Porter } from '@porter/core';
import { fmtMs, fmtUs } from './lib/format.mjs';
import { log, quantile } from './lib/util.mjs';

export async function runAging({ quick = false, samples, agingMs = 50 } = {}) {
  const count = samples ?? (quick ? 30 : 100);
  // allocate() binds nothing, so any one port will do; mode 'pool' hands it out wherever
  // it lies (the default mode leaves ports of the kernel's ephemeral range to the kernel).
  const porter = new Porter({ portRange: [40000, 40000], mode: 'pool', agingMs, kernelFallback: false });
  const destination = { address: '127.0.0.1', port: 9 };
  const lateMs = [];
  /** For each sample, how long after the deadline the last refused poll was (0 if none). */
  const refusedLateMs = [];
  let early = 0;
  let polls = 0;
  for (let i = 0; i < count; i++) {
    const lease = porter.allocate(destination);
    const released = performance.now();
    lease.release({ aging: true });
    const deadline = released + agingMs;
    const giveUp = deadline + 5000;
    let lastRefused = Number.NEGATIVE_INFINITY;
    // Sleep until shortly before the deadline, then poll: fewer refused calls (each
    // builds an error object), so less garbage collection in the measured window.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, agingMs - 10)));
    for (;;) {
      polls++;
      const asked = performance.now();
      let again;
      try {
        again = porter.allocate(destination);
      } catch (err) {
        if (err?.code !== 'ERR_PORTER_EXHAUSTED') throw err;
      }
      const now = performance.now();
      if (again) {
        // The deadline was set inside release(), after `released`: a small negative
        // value here is measurement, not an early return; count those below -1 ms.
        if (now - deadline < -1) early++;
        lateMs.push(now - deadline);
        refusedLateMs.push(Math.max(0, lastRefused - deadline));
        again.release({ aging: false });
        break;
      }
      lastRefused = asked;
      if (now > giveUp) throw new Error('the aging port never came back');
    }
    // Let the event loop breathe between samples.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const out = {
    agingMs,
    samples: count,
    polls,
    late_p50_ms: quantile(lateMs, 0.5),
    late_p99_ms: quantile(lateMs, 0.99),
    late_max_ms: Math.max(...lateMs),
    late_min_ms: Math.min(...lateMs),
    // A refused poll after the deadline is the core being late; a late hand-out with no
    // refused poll after the deadline is this process not running (the machine is shared).
    refused_after_deadline_p50_ms: quantile(refusedLateMs, 0.5),
    refused_after_deadline_p99_ms: quantile(refusedLateMs, 0.99),
    refused_after_deadline_max_ms: Math.max(...refusedLateMs),
    early,
  };
  log(`  aging: late p50 ${out.late_p50_ms.toFixed(3)} ms, p99 ${out.late_p99_ms.toFixed(3)} ms`);
  return out;
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function agingReport(a) {
  const out = [];
  out.push(
    `A Porter with a one-port range and agingMs ${a.agingMs}: the lease is released into aging, then, from 10 ms ` +
      `before the deadline, \`allocate()\` is polled in a tight loop until the port comes back; ${a.samples} ` +
      'samples. How long after ' +
      `its deadline the port was handed out again: p50 ${fmtMs(a.late_p50_ms)}, p99 ${fmtMs(a.late_p99_ms)}, ` +
      `max ${fmtMs(a.late_max_ms)}; handed out before the deadline: ${a.early} times. The core's own part: the ` +
      'last poll refused (ERR_PORTER_EXHAUSTED) had been asked at most ' +
      `${fmtUs(a.refused_after_deadline_max_ms * 1000, 1)} after the deadline (p99 ${fmtUs(a.refused_after_deadline_p99_ms * 1000, 1)}), ` +
      'so the rest of the tail is the polling process not running (a shared machine, garbage collection), not ' +
      'the core holding the port. (The Erlang library frees aging ports in one batch every 30 s: from 0 to 30 s ' +
      'late.)',
  );
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runAging({ samples: Number(process.argv[2]) || undefined });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
