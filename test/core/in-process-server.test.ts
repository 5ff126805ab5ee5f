// A server in the same process as porter's connects is not starved: an awaited loop of
// connects that each settle at once on loopback still lets the event loop reach its poll
// phase once per connect, as net.connect's do, so the server accepts as fast as they come
// (libuv accepts one connection per poll phase). Before, the loop ran 33 connects per
// accept, the accept queue overflowed and a SYN was dropped (a one-second retransmission)
// every ~544 connects at backlog 511, every ~69 at backlog 64. In a namespace of the
// test's own, so the kernel's counters (nstat) are this loop's alone; nothing here
// depends on how long anything took.
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { commandMissing, testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/in-process-server.mjs', import.meta.url));

interface Loop {
  connects: number;
  accepted: number;
  mostBehind: number;
  counters: Record<string, number>;
}

const TOTAL = 2_000;
const BACKLOGS = [511, 64];

testIf(netnsUnavailableReason() ?? commandMissing('nstat'))(
  'an awaited loop of 2,000 connects to a server in the same process: no accept queue overflow, no SYN retransmitted',
  async (t) => {
    const run = await runInNetns(script, [String(TOTAL), ...BACKLOGS.map(String)], { timeoutMs: 120_000 });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Record<string, { net: Loop; porter: Loop }>>(run.stdout);
    t.log(JSON.stringify(r));
    for (const backlog of BACKLOGS) {
      for (const method of ['net', 'porter'] as const) {
        const loop = r[backlog]?.[method] as Loop;
        const what = `${method}, backlog ${backlog}`;
        t.is(loop.connects, TOTAL, what);
        t.like(
          loop.counters,
          { TcpExtListenOverflows: 0, TcpExtListenDrops: 0, TcpExtTCPSynRetrans: 0 },
          `${what}: no SYN dropped or retransmitted`,
        );
        // The server keeps up: read as each connect settles, it has accepted all but the
        // last one or two (it accepts in the next poll phase). Before, it fell behind by
        // the whole accept queue.
        t.true(loop.mostBehind <= 2, `${what}: the server fell ${loop.mostBehind} connections behind`);
      }
    }
  },
);
