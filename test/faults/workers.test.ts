// Worker threads that go while they hold ports give every port back, and close every
// descriptor they held: the default Porter's registry is the whole process's, so what a
// dead worker kept would be lost to every thread for good. 50 workers each way, in a
// network namespace of the test's own (fixtures/workers.mjs, fixtures/worker.mjs).
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { faultsMissing } from './requirements.js';

const script = fileURLToPath(new URL('./fixtures/workers.mjs', import.meta.url));
const missing = faultsMissing();

interface Totals {
  inUse: number;
  aging: number;
  pools: number;
}
interface AfterAging {
  /** Once no port was in use any more: what was aging, and its last deadline. */
  inUse: Totals & { maxRemainingMs: number };
  /** Past that deadline. */
  after: Totals;
}
interface Report {
  workers: number;
  codes: number[];
  /** The fewest ports in use the main thread saw when a worker held its connections. */
  seenFromMain: number | null;
  gone: AfterAging;
  start: number;
  fds: number;
  fdsEnd: number;
  allocations: number;
  releases: number;
  main: number;
  fresh: { port?: number; error?: string };
  end: AfterAging;
  portRange: [number, number];
  /** stats().connectErrors at the end (ABORT_ERR: connects cancelled by a teardown). */
  errors: Record<string, number>;
  tcp?: Record<string, string>;
}

async function run(t: ExecutionContext, how: string, exitCode: number): Promise<void> {
  t.timeout(300_000);
  const result = await runInNetns(script, [how, '50'], { timeoutMs: 280_000 });
  t.is(result.code, 0, result.stderr);
  const r = lastJson<Report>(result.stdout);
  t.log(
    `${how}: ${r.allocations} ports allocated by ${r.workers} workers; descriptors ${r.start} -> ${r.fds}; ` +
      `${r.gone.inUse.aging} aging once the workers were gone; connect errors ${JSON.stringify(r.errors)}`,
  );
  t.deepEqual(r.codes, Array(50).fill(exitCode));
  if (how === 'terminate') {
    // The default Porter is one registry for the process: the main thread sees the 40
    // connections each worker holds.
    t.true((r.seenFromMain ?? 0) >= 40, `${r.seenFromMain}`);
  }
  // Nothing in use once the workers are gone, and whatever was aging came back by its
  // deadline. (Not asserted: that no deadline was more than agingMs away. The connects a
  // teardown cancels are released on the core's threads, and one released while the
  // snapshot was being taken is stamped later than the snapshot's clock reading.)
  t.is(r.gone.inUse.inUse, 0, 'ports still in use after the workers were gone');
  t.like(r.gone.after, { inUse: 0, aging: 0 });
  t.is(r.releases, r.allocations, 'every port handed out was released exactly once');
  // Every descriptor a worker held is closed: the count is back where it started.
  t.is(r.fds, r.start, JSON.stringify(r.tcp));
  // porter still works for the threads that remain, and for a new one.
  const [first, last] = r.portRange;
  t.true(r.main >= first && r.main <= last, `${r.main}`);
  t.true(r.fresh.port !== undefined && r.fresh.port >= first && r.fresh.port <= last, JSON.stringify(r.fresh));
  t.like(r.end.after, { inUse: 0, aging: 0 });
  t.is(r.fdsEnd, r.start, JSON.stringify(r.tcp));
}

testIf(missing, { serial: true })(
  '50 workers terminated while holding connections, with connects in flight, give every port and descriptor back',
  (t) => run(t, 'terminate', 1),
);

testIf(missing, { serial: true })(
  '50 workers that call process.exit() mid-connect give every port and descriptor back',
  (t) => run(t, 'exit', 0),
);

testIf(missing, { serial: true })(
  '50 workers that exit while a socket takes over its descriptor (just before or after) leak neither',
  (t) => run(t, 'exit-at-open', 0),
);
