import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor, portState } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown, closed, destroyAll } from '../helpers/sockets.js';
import { delay } from '../helpers/wait.js';

const AGING_MS = 500;

async function setup(mode: 'echo' | 'close-first' | 'reset-first', agingMs = AGING_MS) {
  const servers = await startServers({ mode });
  const [first] = await findFreePortBlock(1);
  const porter = new Porter({ portRange: [first, first], agingMs, kernelFallback: false });
  return { servers, port: servers.ports[0] as number, first, porter };
}

for (const how of ['end', 'destroy'] as const) {
  test(`a local close (${how}) ages the port for agingMs, then it is free again`, async (t) => {
    const { servers, port, first, porter } = await setup('echo');
    const sockets = closeAtTeardown(t, servers);
    const socket = await porter.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    t.is(socket.localPort, first);
    const done = closed(socket);
    // The release happens after this moment, so its deadline is at least AGING_MS after it.
    const beforeClose = performance.now();
    if (how === 'end') socket.end();
    else socket.destroy();
    await done;
    t.true(leaseOf(socket)?.released);
    const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
    const sinceClose = performance.now() - beforeClose;
    t.deepEqual(pool?.inUse, []);
    t.is(pool?.aging.length, 1);
    const aging = pool?.aging[0];
    t.is(aging?.port, first);
    // The time left is AGING_MS less what has passed since the release (at most
    // sinceClose), whatever the load: no fixed window.
    const remaining = aging?.remainingMs ?? Number.NaN;
    t.true(
      remaining <= AGING_MS && remaining >= AGING_MS - sinceClose - 1,
      `${remaining} ms left, ${sinceClose} ms on`,
    );
    t.is(pool?.free, 0);
    // Before its deadline the only port cannot be handed out (if this machine was so slow
    // that the deadline has passed by now, handing it out is right: check that instead).
    const refusedOrDue = async (take: () => Promise<{ localPort?: number; release(): void }>) => {
      try {
        const taken = await take();
        t.true(performance.now() - beforeClose >= AGING_MS - 1, `port ${taken.localPort} handed out early`);
        taken.release();
      } catch (e) {
        t.is((e as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
      }
    };
    await refusedOrDue(async () => {
      const lease = porter.allocate({ address: '127.0.0.1', port });
      return { localPort: lease.localPort, release: () => lease.release({ aging: false }) };
    });
    await refusedOrDue(async () => {
      const s = await porter.connect({ host: '127.0.0.1', port });
      return { localPort: s.localPort, release: () => s.resetAndDestroy() };
    });
    // After it, it can: the release came before 'close' was emitted, so AGING_MS from
    // now is past the deadline.
    await delay(AGING_MS + 1);
    t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.aging, []);
    const lease = porter.allocate({ address: '127.0.0.1', port });
    t.is(lease.localPort, first);
    t.true(lease.release({ aging: false }));
    // A fresh connection on the same port works: the kernel accepts the reuse.
    const again = await porter.connect({ host: '127.0.0.1', port });
    sockets.push(again);
    t.is(again.localPort, first);
  });
}

// The exact deadline is tested on the core's manual clock (crates/porter-core/tests:
// aging_port_returns_exactly_at_its_own_deadline, a_closed_connection_ages_until_its_deadline);
// here, on the real clock, only what no load can change: never before the deadline.
test('the port is not handed out before its deadline even when asked repeatedly', async (t) => {
  const agingMs = 300;
  const { servers, port, first, porter } = await setup('echo', agingMs);
  t.teardown(() => servers.stop());
  const socket = await porter.connect({ host: '127.0.0.1', port });
  const done = closed(socket);
  const beforeClose = performance.now();
  socket.end();
  await done;
  let refusals = 0;
  for (;;) {
    const asked = performance.now();
    try {
      const lease = porter.allocate({ address: '127.0.0.1', port });
      t.is(lease.localPort, first);
      lease.release({ aging: false });
      // The release came after beforeClose, its deadline agingMs after the release.
      t.true(asked - beforeClose >= agingMs - 1, `handed out ${asked - beforeClose} ms after the close began`);
      break;
    } catch (e) {
      t.is((e as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
      refusals += 1;
      await delay(10);
    }
  }
  t.log(`${refusals} refusals before the port came back`);
});

test('a remote close (server ends first) returns the port at once', async (t) => {
  const { servers, port, first, porter } = await setup('close-first');
  t.teardown(() => servers.stop());
  const socket = await porter.connect({ host: '127.0.0.1', port });
  socket.on('data', () => {});
  t.is(socket.localPort, first);
  await closed(socket);
  t.true(leaseOf(socket)?.released);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, first), 'free');
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, []);
  t.deepEqual(pool?.aging, []);
  t.is(pool?.free, 1);
  const lease = porter.allocate({ address: '127.0.0.1', port });
  t.is(lease.localPort, first);
  lease.release({ aging: false });
});

test('a reset by the server returns the port at once', async (t) => {
  const { servers, port, first, porter } = await setup('reset-first');
  t.teardown(() => servers.stop());
  const socket = await porter.connect({ host: '127.0.0.1', port });
  let error: NodeJS.ErrnoException | undefined;
  socket.on('error', (e) => {
    error = e;
  });
  socket.on('data', () => {});
  socket.write('reset me');
  await closed(socket);
  t.is(error?.code, 'ECONNRESET');
  t.true(leaseOf(socket)?.released);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, first), 'free');
});

test('resetAndDestroy() returns the port at once', async (t) => {
  const { servers, port, first, porter } = await setup('echo');
  const sockets = closeAtTeardown(t, servers);
  const socket = await porter.connect({ host: '127.0.0.1', port });
  t.is(typeof socket.resetAndDestroy, 'function');
  const done = closed(socket);
  socket.resetAndDestroy();
  await done;
  t.true(leaseOf(socket)?.released);
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, []);
  t.deepEqual(pool?.aging, []);
  // The port really is reusable at once: RST left no TIME_WAIT.
  const again = await porter.connect({ host: '127.0.0.1', port });
  sockets.push(again);
  t.is(again.localPort, first);
});

test('leaseOf(socket): fields, exactly-once release, no second release on close', async (t) => {
  const { servers, port, first, porter } = await setup('echo', 5_000);
  t.teardown(() => servers.stop());
  const socket = await porter.connect({ host: '127.0.0.1', port });
  const lease = leaseOf(socket);
  if (lease === undefined) return t.fail('no lease');
  // The address the socket is bound to (the pool itself is keyed by the unspecified one).
  t.is(lease.localAddress, socket.localAddress as string);
  t.is(lease.localAddress, '127.0.0.1');
  t.is(lease.localPort, first);
  t.is(lease.localPort, socket.localPort as number);
  t.is(lease.remoteAddress, '127.0.0.1');
  t.is(lease.remotePort, port);
  t.false(lease.released);
  t.is(typeof lease.release, 'function');
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, [first]);

  t.true(lease.release({ aging: false }));
  t.true(lease.released);
  t.false(lease.release());
  t.false(lease.release({ aging: false }));
  // Released at once (aging: false): free, so it can be taken again...
  const other = porter.allocate({ address: '127.0.0.1', port });
  t.is(other.localPort, first);
  // ...and the socket closing later must not release the port the new lease holds.
  await destroyAll([socket]);
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, [first]);
  t.false(other.released);
  t.true(other.release());
  t.is(portState(porter.snapshot(), '127.0.0.1', port, first), 'aging');
  t.false(other.release());
  t.is(leaseOf({}), undefined);
});

test('allocate(): lease fields, release() ages by default, release({aging: false}) does not', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], agingMs: 5_000, kernelFallback: false });
  const dest = { address: '127.0.0.1', port: 9 };
  const a = porter.allocate(dest);
  const b = porter.allocate(dest);
  t.deepEqual(
    [a.localPort, b.localPort].sort((x, y) => x - y),
    [first, last],
  );
  t.is(a.remoteAddress, '127.0.0.1');
  t.is(a.remotePort, 9);
  t.is(a.localAddress, '0.0.0.0');
  t.throws(() => porter.allocate(dest), { code: 'ERR_PORTER_EXHAUSTED' });
  t.true(a.release());
  t.is(portState(porter.snapshot(), '127.0.0.1', 9, a.localPort), 'aging');
  t.true(b.release({ aging: false }));
  t.is(portState(porter.snapshot(), '127.0.0.1', 9, b.localPort), 'free');
  // The port released at once is the only one to hand out; the aging one is not.
  t.is(porter.allocate(dest).localPort, b.localPort);
  t.throws(() => porter.allocate(dest), { code: 'ERR_PORTER_EXHAUSTED' });
  // Another destination is another pool: the aging port is free there.
  const other = [
    porter.allocate({ address: '127.0.0.1', port: 10 }),
    porter.allocate({ address: '127.0.0.1', port: 10 }),
  ];
  t.true(other.some((l) => l.localPort === a.localPort));
});
