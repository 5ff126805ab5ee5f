// A connect still waiting on the reactor when its route is closed (porter.close(), or
// the route evicted from the Porter's cache) finishes as any other: the socket works and
// its lease releases. In a network namespace of the test's own, where nftables holds
// the SYNs back until the route is closed (fixtures/closed-mid-connect.mjs).
import { fileURLToPath } from 'node:url';
import { runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { faultsMissing } from './requirements.js';

const script = fileURLToPath(new URL('./fixtures/closed-mid-connect.mjs', import.meta.url));

interface Run {
  name: string;
  errors: string[];
  connected: number;
  echoed: number;
  inUse: number;
  after: { inUse: number; aging: number };
  stats: { allocations: number; releases: { aging: number; immediate: number } };
  fds: number;
  fdsAfter: number;
}

testIf(faultsMissing())('a connect in flight when its route is closed connects, and its port comes back', async (t) => {
  const result = await runInNetns(script, [], { timeoutMs: 90_000 });
  t.is(result.code, 0, result.stderr);
  const runs = lastJson<Run[]>(result.stdout);
  t.is(runs.length, 3);
  for (const r of runs) {
    const count = r.name.includes('20') ? 20 : 1;
    t.deepEqual(r.errors, [], r.name);
    t.is(r.connected, count, r.name);
    t.is(r.echoed, count, `${r.name}: the sockets work`);
    t.is(r.inUse, count, `${r.name}: in use while connected`);
    t.like(r.after, { inUse: 0, aging: 0 }, `${r.name}: released once closed, and aged`);
    t.is(r.stats.releases.aging + r.stats.releases.immediate, r.stats.allocations, r.name);
    t.is(r.fdsAfter, r.fds, `${r.name}: every descriptor closed`);
  }
});
