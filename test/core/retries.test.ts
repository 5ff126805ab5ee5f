// The retry policy on real collisions: EADDRINUSE at bind (a listener holds the port) and
// EADDRNOTAVAIL at connect (another socket holds the same 4-tuple). A port that collided
// is not handed out again for that destination until it has aged. The pools may start
// their walk anywhere in the range, so each test holds every port whose order matters,
// or checks an end state that every order reaches.
import test from 'ava';
import { collide, type Holder } from '../helpers/collisions.js';
import { poolFor, portState } from '../helpers/pools.js';
import { ephemeralRange } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { destroyAll } from '../helpers/sockets.js';

const code = (holder: Holder): string => (holder === 'listener' ? 'EADDRINUSE' : 'EADDRNOTAVAIL');
const syscall = (holder: Holder): string => (holder === 'listener' ? 'bind' : 'connect');

for (const holder of ['listener', '4-tuple'] as const) {
  test(`${code(holder)}, attempts 0, no fallback: the error, with the port, which ages`, async (t) => {
    const { porter, port, first } = await collide(t, holder, 1, 1, { retry: { attempts: 0 }, kernelFallback: false });
    const err = (await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }))) as NodeJS.ErrnoException & {
      address?: string;
      port?: number;
      localAddress?: string;
      localPort?: number;
    };
    t.is(err.code, code(holder));
    t.is(err.syscall, syscall(holder));
    t.is(err.errno, holder === 'listener' ? -98 : -99);
    t.is(err.localPort, first);
    // A bind error names the address it bound; a failed connect the one the kernel used.
    t.is(err.localAddress, holder === 'listener' ? '0.0.0.0' : '127.0.0.1');
    t.is(err.address, '127.0.0.1');
    t.is(err.port, port);
    const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
    t.deepEqual(pool?.inUse, []);
    t.deepEqual(
      pool?.aging.map((a) => a.port),
      [first],
    );
    t.deepEqual(porter.stats().retries, { EADDRINUSE: 0, EADDRNOTAVAIL: 0 });
    t.is(porter.stats().connectErrors[code(holder)], 1);
  });

  test(`${code(holder)}, attempts 0, with fallback: the kernel picks the port`, async (t) => {
    const { porter, port, first, sockets } = await collide(t, holder, 1, 1, {
      retry: { attempts: 0 },
      kernelFallback: true,
    });
    const socket = await porter.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    const lp = socket.localPort as number;
    const [low, high] = ephemeralRange();
    t.true(lp >= low && lp <= high, `kernel-chosen ${lp}`);
    const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
    t.deepEqual(pool?.inUse, [lp]);
    t.deepEqual(
      pool?.aging.map((a) => a.port),
      [first],
    );
    t.is(porter.stats().kernelFallbacks, 1);
  });

  test(`${code(holder)}, attempts 1, both ports taken: both tried, both age, then the kernel`, async (t) => {
    const { porter, port, first, last, sockets } = await collide(t, holder, 2, 2, {
      retry: { attempts: 1 },
      kernelFallback: true,
    });
    const socket = await porter.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    t.true((socket.localPort as number) > last || (socket.localPort as number) < first);
    const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
    t.deepEqual(pool?.inUse, [socket.localPort]);
    // Each port of the range was tried: the first collision was retried on the other
    // port, the second through the kernel's choice (each counts as a retry).
    t.deepEqual(pool?.aging.map((a) => a.port).sort(), [first, last].sort());
    t.deepEqual(porter.stats().retries, { EADDRINUSE: 0, EADDRNOTAVAIL: 0, [code(holder)]: 2 });
    t.is(porter.stats().kernelFallbacks, 1);
  });

  test(`${code(holder)}, attempts 1, one port taken: the connect lands on the other, the taken one ages`, async (t) => {
    const { porter, port, first, last, sockets } = await collide(t, holder, 2, 1, {
      retry: { attempts: 1 },
      kernelFallback: false,
    });
    // Whether the walk starts on the taken port (retried at once) or on the free one (the
    // taken port is tried by the second connect), the end state is the same.
    const socket = await porter.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    t.is(socket.localPort, last);
    const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }));
    t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
    t.is(portState(porter.snapshot(), '127.0.0.1', port, first), 'aging');
    t.is(portState(porter.snapshot(), '127.0.0.1', port, last), 'in-use');
    t.deepEqual(porter.stats().retries, { EADDRINUSE: 0, EADDRNOTAVAIL: 0, [code(holder)]: 1 });
    t.is(porter.stats().exhausted, 1);
    // Another destination: a port held by a connection collides only towards its
    // destination, and is free elsewhere; a port a listener holds is refused to every
    // destination from that local address, and passed over for all of them.
    const elsewhere = { address: '127.0.0.1', port: port === 65535 ? 1 : port + 1 };
    const leases = [porter.allocate(elsewhere)];
    if (holder === '4-tuple') leases.push(porter.allocate(elsewhere));
    t.deepEqual(
      leases.map((l) => l.localPort).sort((a, b) => a - b),
      holder === '4-tuple' ? [first, last] : [last],
    );
    t.throws(() => porter.allocate(elsewhere), { code: 'ERR_PORTER_EXHAUSTED' });
    for (const l of leases) l.release({ aging: false });
    await destroyAll([socket]);
  });
}

test('a port a listener holds is passed over on its local address for every destination, not found again each lap', async (t) => {
  // agingMs 0 and resets: every port comes back at once, so each destination's walk laps
  // the 6-port range five times. bind() refuses the listener's port once; from then on
  // every destination from that local address passes over it (for BLOCK_PERIOD, 60 s).
  // Wherever the walks start, the first lap of the first destination meets that port.
  const { porter, first, last, taken } = await collide(t, 'listener', 6, 1, {
    agingMs: 0,
    retry: { attempts: 8 },
    kernelFallback: false,
  });
  const servers = await startServers({ count: 4 });
  t.teardown(() => servers.stop());
  const seen = new Set<number>();
  for (const port of servers.ports) {
    for (let i = 0; i < 15; i++) {
      const socket = await porter.connect({ host: '127.0.0.1', port });
      seen.add(socket.localPort as number);
      await new Promise((resolve) => socket.once('close', resolve).resetAndDestroy());
    }
  }
  t.is(porter.stats().retries.EADDRINUSE, 1, 'bind() was refused once, on the first lap of the first destination');
  t.false(seen.has(taken[0] as number));
  t.is(seen.size, last - first, 'every other port of the range was used');
});
