// A connect that fails before any SYN left gives its port back at once: nothing of that
// connection can linger in the network or in TIME_WAIT. Nor does one the peer refused (a
// reset answered the SYN: no state on either side), so a client retrying a server that
// is down keeps its ports. In a namespace, so that nothing is sent anywhere but its
// loopback.
import { fileURLToPath } from 'node:url';
import { lastJsonLine, netnsUnavailableReason, runInNetns } from '../helpers/netns.js';
import { testIf } from '../helpers/requirements.js';

const script = fileURLToPath(new URL('./fixtures/netns-before-syn.mjs', import.meta.url));

interface Attempt {
  host: string;
  connected?: boolean;
  error?: { code: string; syscall: string; localPort?: number; address?: string };
  pool?: { inUse: number[]; aging: number[]; free: number };
  releases: { aging: number; immediate: number };
  again: number | string;
}

testIf(netnsUnavailableReason())('ENETUNREACH from connect() and ECONNREFUSED free the port at once', async (t) => {
  const port = 20_000;
  const run = await runInNetns(script, [String(port)], { timeoutMs: 45_000 });
  t.is(run.code, 0, run.stderr);
  const r = lastJsonLine<{ v4: Attempt; v6: Attempt; refused: Attempt }>(run);
  t.log(JSON.stringify(r));
  for (const unreachable of [r.v4, r.v6]) {
    t.is(unreachable.connected, undefined);
    t.like(unreachable.error, {
      code: 'ENETUNREACH',
      syscall: 'connect',
      localPort: port,
      address: unreachable.host,
    });
    t.deepEqual(unreachable.pool, { inUse: [], aging: [], free: 1 }, `${unreachable.host}: not aging`);
    t.deepEqual(unreachable.releases, { aging: 0, immediate: 1 });
    t.is(unreachable.again, port, `${unreachable.host}: the port is handed out again at once`);
  }
  // A SYN left and a reset came back: nothing lingers either.
  t.like(r.refused.error, { code: 'ECONNREFUSED', syscall: 'connect', localPort: port });
  t.deepEqual(r.refused.pool, { inUse: [], aging: [], free: 1 });
  t.deepEqual(r.refused.releases, { aging: 0, immediate: 1 });
  t.is(r.refused.again, port);
});
