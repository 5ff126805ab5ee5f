/**
 * The host's port settings change under a running Porter: `ip_local_port_range` and
 * `ip_local_reserved_ports` are followed for new binds, in network namespaces the tests
 * make (their settings start as Linux's defaults). A Porter with `portRange: [20000,
 * 29999]` is made while the ephemeral range is 32768-60999 (so it binds its whole range
 * itself); then the ephemeral range becomes 20000-20999 and 21000-21199 and 22500-22599
 * are reserved. From then on porter must bind none of the new ephemeral range and none
 * of the reserved ports, so the rest of the host keeps the ephemeral range.
 */
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/live-settings.mjs', import.meta.url));

interface Capacity {
  explicit: number;
  servicePorts: number;
  kernel: number;
  perDestination: number;
  explicitPorts: [number, number][];
  kernelWindow: [number, number] | null;
  ephemeral: [number, number];
}

interface Ports {
  held: number;
  onReserved: number;
  inEphemeral: number;
}

interface Result {
  reflectedAfterMs: number | null;
  capacityBefore: Capacity;
  capacityAfter: Capacity;
  before: Ports;
  heldAcrossChange: number;
  after: Ports & { error?: { code: string }; outsideRange: number };
  kernelPicksAfterChange: number;
  kernelFallbacks: number;
  inUse: number;
  free: number[];
  plain: { ok: number; errors: Record<string, number> };
}

const inNetns = testIf(netnsUnavailableReason());

const CHANGE = { ephemeral: '20000 20999', reserved: '21000-21199,22500-22599' };

async function run(t: ExecutionContext, scenario: Record<string, unknown>): Promise<Result> {
  const r = await runInNetns(
    script,
    [JSON.stringify({ porter: { portRange: [20000, 29999] }, ...CHANGE, waitMs: 5_000, ...scenario })],
    { timeoutMs: 180_000 },
  );
  t.is(r.code, 0, r.stderr);
  const result = lastJson<Result>(r.stdout);
  t.log(
    `settings seen after ${result.reflectedAfterMs} ms; held before ${JSON.stringify(result.before)}, ` +
      `after ${JSON.stringify(result.after)}, kernel picks ${result.kernelPicksAfterChange}; ` +
      `plain connects ${JSON.stringify(result.plain)}`,
  );
  return result;
}

const within = (intervals: [number, number][], zones: [number, number][]): boolean =>
  intervals.every(([a, b]) => zones.some(([first, last]) => a >= first && b <= last));

/** What the Porter must report once it follows the change (the ports /etc/services
 * names are left out of porter's own, `servicePorts` of them). */
const followsTheChange = (t: ExecutionContext, r: Result): void => {
  t.not(r.reflectedAfterMs, null, 'capacity() shows the new settings');
  const before = r.capacityBefore;
  t.true(within(before.explicitPorts, [[20000, 29999]]));
  t.is(before.explicit + before.servicePorts, 10_000, 'before: the whole range is porter’s own');
  const after = r.capacityAfter;
  t.deepEqual(after.ephemeral, [20000, 20999]);
  t.true(
    within(after.explicitPorts, [
      [21200, 22499],
      [22600, 29999],
    ]),
    JSON.stringify(after.explicitPorts),
  );
  t.is(after.explicit + after.servicePorts, 10_000 - 1_000 - 300);
  t.deepEqual(after.kernelWindow, [20000, 20999]);
  t.is(after.kernel, 1_000);
  t.is(after.perDestination, 9_700 - after.servicePorts, 'reserved ports count no more');
};

inNetns(
  'a Porter made before the ephemeral range moved onto its range binds none of the new ephemeral range nor any reserved port, and the host keeps its ports',
  async (t) => {
    const r = await run(t, { hold: 8_000, plain: 900 });
    followsTheChange(t, r);
    t.is(r.after.held, 8_000);
    t.is(r.after.onReserved, 0, 'no port on a reserved one');
    t.is(
      r.after.inEphemeral,
      r.kernelPicksAfterChange,
      'a port of the ephemeral range only where the kernel picked it',
    );
    t.is(r.after.outsideRange, 0);
    t.deepEqual(r.plain, { ok: 900, errors: {} }, 'every plain connect from another process succeeds');
    t.deepEqual(r.free, [r.capacityAfter.perDestination - 8_000], 'free counts the new capacity');
  },
);

inNetns(
  'ports held across the change are not taken back; once released they are not bound again, and the host gets its ephemeral range back',
  async (t) => {
    // 9,000 of the 10,000 ports before the change: a run of them that must cover ports of
    // the future ephemeral range and reserved ports.
    const r = await run(t, { before: 9_000, releaseBefore: true, hold: 8_000, plain: 900 });
    followsTheChange(t, r);
    t.is(r.before.held, 9_000);
    t.true(r.before.inEphemeral + r.before.onReserved > 0, 'held inside the new zones before the change');
    t.is(r.heldAcrossChange, 9_000, 'nothing taken back at the change');
    t.is(r.after.held, 8_000);
    t.is(r.after.onReserved, 0);
    t.is(r.after.inEphemeral, r.kernelPicksAfterChange);
    t.deepEqual(r.plain, { ok: 900, errors: {} });
  },
);
