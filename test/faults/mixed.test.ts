// Every kind of connection fault, mixed, 24,000 connects in one run (TCP through
// @porter/core and TLS through @porter/tls, one Porter), in a network namespace of the
// test's own (fixtures/mixed.mjs says what each kind is). Each kind ends as it must; once
// all are over nothing is in use, what ages comes back by its deadline, every port handed
// out was released once, and the process's descriptors are back where they started.
import { fileURLToPath } from 'node:url';
import { makeCerts } from '../helpers/certs.mjs';
import { runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { faultsMissing } from './requirements.js';

const script = fileURLToPath(new URL('./fixtures/mixed.mjs', import.meta.url));

interface Totals {
  inUse: number;
  aging: number;
}
interface Report {
  total: number;
  seconds: number;
  outcomes: Record<string, Record<string, number>>;
  settled: Totals & { lastDeadline: number };
  after: Totals;
  agingMs: number;
  start: number;
  fds: number;
  stats: {
    allocations: number;
    releases: { aging: number; immediate: number };
    retries: Record<string, number>;
    connectErrors: Record<string, number>;
  };
}

/** How each kind must end: 'ok', or the error code. */
const expected: Record<string, string> = {
  ok: 'ok',
  refused: 'ECONNREFUSED',
  reset: 'ECONNRESET',
  'server-closes-first': 'ok',
  'client-closes-first': 'ok',
  'destroy-mid-connect': 'ok',
  'abort-mid-connect': 'ABORT_ERR',
  'connect-timeout': 'ETIMEDOUT',
  'tls-ok': 'ok',
  'tls-untrusted': 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'tls-closed-mid-handshake': 'ECONNRESET',
  'tls-handshake-timeout': 'ETIMEDOUT',
};
const total = 24_000;
const each = total / Object.keys(expected).length;

testIf(faultsMissing())(
  `${total} connects mixing every fault leave nothing in use and no descriptor open`,
  async (t) => {
    t.timeout(600_000);
    const certs = makeCerts();
    t.teardown(() => certs.cleanup());
    const files = { cert: certs.server.certFile, key: certs.server.keyFile, ca: certs.caFile };
    const result = await runInNetns(script, [String(total), '200', JSON.stringify(files)], { timeoutMs: 580_000 });
    t.is(result.code, 0, result.stderr);
    const r = lastJson<Report>(result.stdout);
    t.log(
      `${r.total} connects in ${r.seconds.toFixed(1)} s; ${r.stats.allocations} ports allocated; ` +
        `${r.settled.aging} aging when the last was over; connect errors ${JSON.stringify(r.stats.connectErrors)}`,
    );
    t.deepEqual(Object.keys(r.outcomes).sort(), Object.keys(expected).sort());
    for (const [kind, outcome] of Object.entries(expected)) {
      t.deepEqual(r.outcomes[kind], { [outcome]: each }, kind);
    }
    // Nothing in use once every connection is over, and the aging ports came back by their
    // deadline (at most agingMs away).
    t.is(r.settled.inUse, 0);
    t.true(r.settled.lastDeadline <= r.agingMs, `${r.settled.lastDeadline}`);
    t.like(r.after, { inUse: 0, aging: 0 });
    // Every port handed out was released exactly once: at once where no TIME_WAIT is left
    // on this side (refused, reset by the server, closed by the server first), into aging
    // everywhere else.
    const { allocations, releases } = r.stats;
    t.is(releases.aging + releases.immediate, allocations);
    t.is(releases.immediate, 3 * each);
    t.is(r.fds, r.start, 'descriptors back where they started');
  },
);
