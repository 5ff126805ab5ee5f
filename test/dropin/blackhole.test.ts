/**
 * undici through porter's connector against a black hole, in a network namespace the
 * test makes (`unshare -n`; nothing touches the host's routes): 198.51.100.0/24 routed
 * into loopback, where nothing answers a SYN, and a `blackhole` route for 203.0.113.0/24.
 * The connect timeout rejects the request in time and gives the port back, also through
 * Node's global fetch and when the agent is destroyed mid-connect.
 */
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/blackhole.ts', import.meta.url));

interface Outcome {
  code: string | undefined;
  name: string | undefined;
  order: string[];
  inUseWhilePending?: number;
}
interface Counts {
  inUse: number;
  aging: number;
}

const nsTest = testIf(netnsUnavailableReason());

nsTest(
  'a black hole: rejected at the connect timeout, the port released; a blackhole route: refused at once',
  async (t) => {
    const run = await runInNetns(script, [], {
      setup: ['ip route add 198.51.100.0/24 dev lo', 'ip route add blackhole 203.0.113.0/24'],
      timeoutMs: 30_000,
    });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Record<string, Outcome & Counts>>(run.stdout);
    t.log(JSON.stringify(r));
    for (const name of ['request', 'fetchHttps', 'globalFetch'] as const) {
      const o = r[name] as Outcome;
      t.is(o.code, 'UND_ERR_CONNECT_TIMEOUT', name);
      t.is(o.name, 'ConnectTimeoutError', name);
      // Not before its time: timers set with the request at half and three quarters of
      // the timeout fired first.
      t.deepEqual(o.order, ['half the timeout', '3/4 of the timeout', 'settled'], name);
      t.is(o.inUseWhilePending, 1, `${name}: the pending connect held one port of porter's`);
    }
    // Every timed-out connect gave its port back (into aging: its SYN left).
    t.deepEqual(r.afterRequest, { inUse: 0, aging: 1 });
    t.deepEqual(r.afterFetchHttps, { inUse: 0, aging: 2 });
    t.deepEqual(r.afterGlobalFetch, { inUse: 0, aging: 3 });
    t.is(r.inUseBeforeDestroy as unknown as number, 1);
    t.truthy((r.destroyed as Outcome).code, 'the request pending at destroy() failed');
    t.deepEqual(r.afterDestroy, { inUse: 0, aging: 4 });
    const refused = r.refused as Outcome;
    // Refused by the kernel, before the connect timeout: that would have answered first,
    // with UND_ERR_CONNECT_TIMEOUT (the callback runs once).
    t.is(refused.code, 'EINVAL');
    t.is((r.afterRefused as Counts).inUse, 0);
  },
);
