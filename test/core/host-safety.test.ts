/**
 * Host safety, on real sockets in network namespaces the tests make: porter must never
 * take the kernel's ephemeral range (or reserved ports) away from the rest of the host.
 * A port bound explicitly is skipped by the kernel whenever it picks a port for anyone
 * else's connect(), so a Porter that binds inside the ephemeral range starves every
 * other outgoing connection of the host. Each namespace gets a 1,000-port ephemeral
 * range (2000-2999) that overlaps porter's default range.
 */
import { fileURLToPath } from 'node:url';
import { hostPorts, Porter } from '@porter/core';
import test, { type ExecutionContext } from 'ava';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/host-safety.mjs', import.meta.url));

interface Outcome {
  ok: number;
  errors: Record<string, number>;
}

interface Result {
  host: { ephemeral: [number, number]; reserved: [number, number][]; readFromSystem: boolean };
  options: { portRange: [number, number]; mode: string; retry: { attempts: number } };
  capacity: {
    mode: string;
    explicit: number;
    kernel: number;
    perDestination: number;
    explicitPorts: [number, number][];
    kernelWindow: [number, number] | null;
    kernelWindowNarrowed: boolean;
    ephemeral: [number, number];
  };
  held: number;
  holdError?: { code: string; message: string };
  ports: { min: number; max: number; distinct: number; inEphemeral: number; all: number[] };
  inUse: number;
  stats: { kernelPicks: number; kernelFallbacks: number; exhausted: number };
  sameProcess: Outcome;
  otherProcess: Outcome;
}

interface Scenario {
  ephemeral?: string;
  reserved?: string;
  porter: Record<string, unknown>;
  hold: number;
  plain: number;
}

/** The tests that run in namespaces: skipped (and counted) without them, failing in CI. */
const inNetns = testIf(netnsUnavailableReason());

async function run(t: ExecutionContext, scenario: Scenario): Promise<Result> {
  // These tests count the ports of the zones exactly: the ports /etc/services names are
  // left in (service-ports.test.ts is about those).
  const args = { ephemeral: '2000 2999', ...scenario, porter: { servicePorts: 'use', ...scenario.porter } };
  const run = await runInNetns(script, [JSON.stringify(args)], {
    timeoutMs: 90_000,
  });
  t.is(run.code, 0, run.stderr);
  const result = lastJson<Result>(run.stdout);
  t.log(
    `held ${result.held} (${result.ports.inEphemeral} in the ephemeral range, kernel picks ${result.stats.kernelPicks})` +
      `${result.holdError ? `, then ${result.holdError.code}` : ''}; plain connects: ` +
      `same process ${JSON.stringify(result.sameProcess)}, other process ${JSON.stringify(result.otherProcess)}`,
  );
  return result;
}

const everyPlainConnectSucceeds = (t: ExecutionContext, r: Result, n: number): void => {
  t.deepEqual(r.sameProcess, { ok: n, errors: {} }, 'plain connects from the same process');
  t.deepEqual(r.otherProcess, { ok: n, errors: {} }, 'plain connects from another process');
};

const inWindow = (p: number, [first, last]: [number, number]): boolean => p >= first && p <= last;

inNetns('default options: 3,000 connections held, and every plain connect of the host still succeeds', async (t) => {
  const r = await run(t, { porter: {}, hold: 3000, plain: 900 });
  t.is(r.options.mode, 'hybrid');
  t.is(r.held, 3000);
  t.is(r.ports.distinct, 3000);
  // Porter bound no port of the ephemeral range: any there was the kernel's pick (after a
  // collision, say with a listener of the namespace).
  t.is(r.ports.inEphemeral, r.stats.kernelPicks, 'porter bound no port of the ephemeral range');
  t.true(r.ports.inEphemeral <= 10);
  t.deepEqual(r.capacity.explicitPorts, [
    [1024, 1999],
    [3000, 65535],
  ]);
  t.deepEqual(r.capacity.kernelWindow, [2000, 2999]);
  t.is(r.capacity.perDestination, 64512, 'the whole range per destination');
  everyPlainConnectSucceeds(t, r, 900);
});

inNetns(
  "mode 'kernel': 3,000 connections from three addresses, all picked by the kernel, and the host keeps its ports",
  async (t) => {
    const r = await run(t, {
      porter: { mode: 'kernel', localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3'] },
      hold: 3001,
      plain: 900,
    });
    t.is(r.capacity.explicit, 0);
    t.is(r.capacity.kernel, 1000);
    t.is(r.held, 3000, 'one window of 1,000 ports per source address');
    t.is(r.holdError?.code, 'ERR_PORTER_EXHAUSTED');
    t.is(r.ports.inEphemeral, 3000);
    t.is(r.stats.kernelPicks, 3000);
    t.is(r.inUse, 3000, 'porter tracks every port the kernel picked');
    everyPlainConnectSucceeds(t, r, 900);
  },
);

inNetns(
  'an explicit portRange gets the same protection: its ephemeral part is left to the kernel, and the whole range is usable',
  async (t) => {
    const r = await run(t, { porter: { portRange: [1500, 2999], kernelFallback: false }, hold: 1501, plain: 900 });
    t.is(r.capacity.explicit, 500);
    t.is(r.capacity.kernel, 1000);
    t.is(r.held, 1500, 'capacity is the whole range');
    t.is(r.holdError?.code, 'ERR_PORTER_EXHAUSTED');
    t.is(r.ports.min, 1500);
    t.is(r.ports.max, 2999);
    t.is(r.ports.inEphemeral, 1000);
    t.is(r.stats.kernelPicks, 1000, 'the ports of the ephemeral range were picked by the kernel');
    everyPlainConnectSucceeds(t, r, 900);
  },
);

inNetns('a range covering part of the ephemeral range keeps the kernel inside it (IP_LOCAL_PORT_RANGE)', async (t) => {
  const r = await run(t, { porter: { portRange: [1500, 2499], kernelFallback: false }, hold: 1001, plain: 100 });
  t.deepEqual(r.capacity.kernelWindow, [2000, 2499]);
  t.true(r.capacity.kernelWindowNarrowed);
  t.is(r.held, 1000);
  t.true(
    r.ports.all.every((p) => inWindow(p, [1500, 2499])),
    'every port, picked by porter or the kernel, is in the range',
  );
  t.is(r.stats.kernelPicks, 500);
  everyPlainConnectSucceeds(t, r, 100);
});

inNetns("mode 'pool' is the opt-out: it binds inside the ephemeral range, and plain connects starve", async (t) => {
  // The Erlang original's behaviour, kept as a mode of its own: this is what the other
  // modes prevent, and it shows that the namespace's setup detects it.
  const r = await run(t, { porter: { mode: 'pool', portRange: [1500, 2999] }, hold: 1500, plain: 50 });
  t.is(r.held, 1500);
  t.is(r.ports.inEphemeral, 1000);
  t.is(r.stats.kernelPicks, 0);
  t.deepEqual(r.sameProcess, { ok: 0, errors: { EADDRNOTAVAIL: 50 } });
  t.deepEqual(r.otherProcess, { ok: 0, errors: { EADDRNOTAVAIL: 50 } });
});

inNetns("portRange 'system' is the ephemeral range, reserved ports skipped in every mode", async (t) => {
  const reserved = '1500-1599,2500-2599';
  const r = await run(t, { reserved, porter: { portRange: 'system' }, hold: 901, plain: 100 });
  // hostPorts() reports the namespace's own settings.
  t.deepEqual(r.host.ephemeral, [2000, 2999]);
  t.deepEqual(r.host.reserved, [
    [1500, 1599],
    [2500, 2599],
  ]);
  t.true(r.host.readFromSystem);
  t.deepEqual(r.options.portRange, [2000, 2999]);
  t.is(r.capacity.kernel, 900, 'the window less its 100 reserved ports');
  t.is(r.held, 900);
  t.false(
    r.ports.all.some((p) => inWindow(p, [2500, 2599])),
    'no reserved port was handed out',
  );
  everyPlainConnectSucceeds(t, r, 100);

  // Pool mode binds every port of its range but the reserved ones.
  const pool = await run(t, { reserved, porter: { mode: 'pool', portRange: [1400, 1699] }, hold: 201, plain: 0 });
  t.is(pool.capacity.explicit, 200);
  t.is(pool.ports.all.filter((p) => inWindow(p, [1400, 1699])).length, 200);
  t.false(
    pool.ports.all.some((p) => inWindow(p, [1500, 1599])),
    'no reserved port was bound',
  );
  // The 201st came from the kernel fallback, in its ephemeral range.
  t.is(pool.held, 201);
  t.is(pool.stats.kernelFallbacks, 1);
  t.is(pool.ports.inEphemeral, 1);
});

test("mode 'kernel' refuses, at construction, a range the kernel would never pick from", (t) => {
  const { ephemeral, features } = hostPorts();
  t.true(features.bindAddressNoPort);
  // A range entirely below the ephemeral range: the kernel picks none of its ports.
  const below: [number, number] = [1024, ephemeral[0] - 1];
  const err = t.throws(() => new Porter({ mode: 'kernel', portRange: below }), {
    code: 'ERR_PORTER_MODE_UNSUPPORTED',
  });
  t.regex(err?.message ?? '', new RegExp(`${ephemeral[0]}\\D+${ephemeral[1]}`));
  // The same range is fine in the other modes, where porter binds it itself.
  t.is(new Porter({ portRange: below }).capacity().kernel, 0);
  const pool = new Porter({ mode: 'pool', portRange: below }).capacity();
  t.is(pool.explicit + pool.servicePorts, below[1] - below[0] + 1, 'every port but those /etc/services names');
  // A range overlapping it works in kernel mode: the window is the overlap.
  const kernel = new Porter({ mode: 'kernel', portRange: [1024, ephemeral[0] + 99] });
  t.deepEqual(kernel.capacity().kernelWindow, [ephemeral[0], ephemeral[0] + 99]);
  t.is(kernel.capacity().explicit, 0);
  t.is(kernel.capacity().kernelWindowNarrowed, features.localPortRange);
  // allocate() hands out ports to bind oneself: a kernel-mode Porter has none.
  t.throws(() => kernel.allocate({ address: '127.0.0.1', port: 80 }), { code: 'ERR_PORTER_EXHAUSTED' });
});
