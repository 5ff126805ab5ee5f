/**
 * Services that start after porter, in network namespaces the tests make. A daemon that
 * binds its port without SO_REUSEADDR fails with EADDRINUSE while any socket holds that
 * port, and for the TIME_WAIT period after one closed first. By default porter binds no
 * port that /etc/services names for tcp (`servicePorts: 'avoid'`); `servicePorts: 'use'`
 * binds them too. The namespace narrows porter's own ports to 1024-5999 so that a Porter
 * holding a connection on every one of them covers the service's port.
 */
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { commandMissing, testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/service-ports.mjs', import.meta.url));

interface Result {
  service: string | undefined;
  servicePort: number;
  options: { servicePorts?: string };
  capacity: { explicit: number; servicePorts?: number; explicitPorts: [number, number][] };
  held: number;
  holdError?: { code: string };
  heldServicePort: boolean;
  heldOtherServicePorts: number;
  whileHeld: string;
  aging: number;
  timeWait: number;
  afterRelease: string;
}

const inNetns = testIf(netnsUnavailableReason() ?? commandMissing('perl', ['-MSocket', '-e', '1']));

async function run(t: ExecutionContext, porter: Record<string, unknown>): Promise<Result> {
  const r = await runInNetns(script, [JSON.stringify({ porter })], { timeoutMs: 180_000 });
  t.is(r.code, 0, r.stderr);
  const result = lastJson<Result>(r.stdout);
  t.log(
    `${result.service} (${result.servicePort}): held ${result.held} of porter's ${result.capacity.explicit} ports ` +
      `(skipping ${result.capacity.servicePorts} named in /etc/services); the service while porter held them: ` +
      `${result.whileHeld}; after porter closed them (${result.timeWait} in TIME_WAIT): ${result.afterRelease}`,
  );
  t.truthy(result.service, '/etc/services names a tcp service below 6000');
  t.is(result.held, result.capacity.explicit, 'a connection on every port porter binds itself');
  t.is(result.holdError, undefined);
  t.true(result.timeWait >= result.held, 'its ports were in TIME_WAIT when the service started again');
  t.is(result.aging, result.held);
  return result;
}

inNetns(
  'by default a service that starts later binds its /etc/services port, while porter holds every port of its own and after they went to TIME_WAIT',
  async (t) => {
    const r = await run(t, {});
    t.is(r.options.servicePorts, 'avoid');
    t.true((r.capacity.servicePorts ?? 0) > 0, 'capacity() counts the ports skipped');
    t.false(r.heldServicePort);
    t.is(r.heldOtherServicePorts, 0, 'no port /etc/services names was bound');
    t.is(r.whileHeld, 'listening');
    t.is(r.afterRelease, 'listening');
  },
);

inNetns("with servicePorts 'use' porter binds the service's port, and the service fails to start", async (t) => {
  // The control: the same run without the protection shows it is what makes the difference.
  const r = await run(t, { servicePorts: 'use' });
  t.is(r.capacity.servicePorts, 0);
  t.true(r.heldServicePort);
  t.is(r.whileHeld, 'EADDRINUSE');
  t.is(r.afterRelease, 'EADDRINUSE', 'TIME_WAIT keeps the port from the service');
});
