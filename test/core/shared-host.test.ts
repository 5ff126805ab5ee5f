/**
 * Processes sharing a host: several processes with default options, each with its own
 * Porter, open connections to one destination all at once, in a network namespace with
 * the kernel's default ephemeral range (32768-60999). Together they must reach the
 * capacity of one range per destination with no failed connect, never two sockets on one
 * 4-tuple (checked with `ss`), and collisions between them must be retried and counted.
 * The destination is a listener that never accepts (its accept queue holds every
 * connection), in a process of its own.
 */
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/shared-host.mjs', import.meta.url));

interface Report {
  opened: number;
  errors: Record<string, number>;
  seconds: number;
  retries: Record<string, number>;
  maxRetriesPerConnect: number;
  kernelPicks: number;
  kernelFallbacks: number;
  inUse: number;
  firstPorts: number[];
}

testIf(netnsUnavailableReason())(
  'four processes, 15,000 connections each to one destination: 60,000 open, none failed, every 4-tuple unique',
  async (t) => {
    // 60,000 of the 64,512 ports of the default range: past the 36,280 porter binds itself
    // (outside 32768-60999), well into the kernel's window. One connect at a time per
    // process (so that the retries of one connect can be counted exactly), 15,000 descriptors
    // per process under the 20,000 limit.
    const run = await runInNetns(script, [JSON.stringify({ processes: 4, connections: 15_000, concurrency: 1 })], {
      timeoutMs: 300_000,
    });
    t.is(run.code, 0, run.stderr);
    const result = lastJson<{
      reports: Report[];
      established: number;
      distinct: number;
    }>(run.stdout);
    for (const [i, r] of result.reports.entries()) {
      t.log(
        `process ${i}: ${r.opened} opened in ${r.seconds.toFixed(1)} s, errors ${JSON.stringify(r.errors)}, ` +
          `retries ${JSON.stringify(r.retries)} (at most ${r.maxRetriesPerConnect} per connect), kernel picks ${r.kernelPicks}`,
      );
    }
    t.is(result.reports.length, 4);
    for (const r of result.reports) {
      t.is(r.opened, 15_000);
      t.deepEqual(r.errors, {});
      t.is(r.inUse, 15_000, 'porter tracks every connection, its own ports and the kernel picks alike');
      // A collision moves to the kernel's window, which has room: one retry per connect at most.
      t.true(r.maxRetriesPerConnect <= 1, `${r.maxRetriesPerConnect} retries in one connect`);
      const retries = (r.retries.EADDRNOTAVAIL ?? 0) + (r.retries.EADDRINUSE ?? 0);
      t.true(retries <= r.kernelPicks, 'every retry went to the kernel');
      t.is(r.kernelFallbacks, 0);
    }
    // Porter binds 36,280 ports itself: 60,000 connections cannot fit without the kernel's
    // window, and the processes can only learn of one another's ports by colliding.
    const picks = result.reports.reduce((n, r) => n + r.kernelPicks, 0);
    t.true(picks >= 60_000 - 36_280, `${picks} kernel picks`);
    t.true(
      result.reports.some((r) => (r.retries.EADDRNOTAVAIL ?? 0) > 0),
      'collisions between the processes were retried and counted',
    );
    // Each process started its walk somewhere else.
    t.is(new Set(result.reports.map((r) => r.firstPorts[0])).size, 4);
    // The kernel's own view: 60,000 established connections, each from its own (address, port).
    t.is(result.established, 60_000);
    t.is(result.distinct, 60_000);
  },
);
