// Out of descriptors: under a lowered RLIMIT_NOFILE a connect rejects with EMFILE (no
// crash, no port kept), and once some connections are closed, connects succeed again.
// In a network namespace of the test's own (fixtures/emfile.mjs).
import { fileURLToPath } from 'node:url';
import { runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { faultsMissing } from './requirements.js';

const script = fileURLToPath(new URL('./fixtures/emfile.mjs', import.meta.url));

interface Report {
  limit: number;
  room: number;
  atLimit: { held: number; inUse: number; errors: Record<string, number> };
  recovered: { connected: number; errors: Record<string, number>; inUse: number };
  echoed: boolean[];
  after: { inUse: number; aging: number };
  start: number;
  fds: number;
  allocations: number;
  releases: { aging: number; immediate: number };
  connectErrors: Record<string, number>;
}

testIf(faultsMissing())(
  'EMFILE under a lowered RLIMIT_NOFILE rejects the connect, keeps no port, and recovers',
  async (t) => {
    const result = await runInNetns(script, ['200'], { timeoutMs: 90_000 });
    t.is(result.code, 0, result.stderr);
    t.is(result.signal, null);
    const r = lastJson<Report>(result.stdout);
    t.log(
      `RLIMIT_NOFILE ${r.limit}: ${r.atLimit.held} connections held, then ${JSON.stringify(r.atLimit.errors)}; ` +
        `${r.recovered.connected} connected after closing half`,
    );
    // Only EMFILE, from socket(): the descriptor is the first thing a connect needs.
    t.deepEqual(Object.keys(r.atLimit.errors), ['EMFILE (socket)']);
    t.true((r.atLimit.errors['EMFILE (socket)'] ?? 0) >= 10);
    t.true(r.atLimit.held >= r.room / 2 && r.atLimit.held < r.limit, `${r.atLimit.held}`);
    // A failed connect keeps no port: in use is exactly what is held.
    t.is(r.atLimit.inUse, r.atLimit.held);
    t.deepEqual(r.recovered.errors, {});
    t.is(r.recovered.connected, 20);
    t.is(r.recovered.inUse, r.atLimit.held - Math.floor(r.atLimit.held / 2) + 20);
    t.deepEqual(r.echoed, [true, true]);
    t.like(r.after, { inUse: 0, aging: 0 });
    t.is(r.releases.aging + r.releases.immediate, r.allocations);
    t.is(r.connectErrors.EMFILE, r.atLimit.errors['EMFILE (socket)']);
    t.is(r.fds, r.start, 'descriptors back where they started');
  },
);
