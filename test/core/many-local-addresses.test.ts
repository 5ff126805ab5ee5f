import type { Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown } from '../helpers/sockets.js';

// A connect's result crosses from the core packed into one number while the lease's
// local-address index is below 256, and as an object beyond. Both must connect from, and
// release to, the right pool.
test('a Porter with 260 local addresses of one port each uses all of them, the 257th on too', async (t) => {
  const count = 260;
  const locals = Array.from({ length: count }, (_, i) => `127.0.${1 + (i >> 8)}.${i & 0xff}`);
  const servers = await startServers({ mode: 'echo' });
  const [port] = await findFreePortBlock(1);
  const porter = new Porter({
    portRange: [port, port],
    localAddresses: locals,
    kernelFallback: false,
    agingMs: 60_000,
  });
  const sockets = closeAtTeardown(t, servers);
  const dest = servers.ports[0] as number;
  for (let i = 0; i < count; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port: dest, timeout: 5_000 }));
  // In order of the local addresses: each pool has one port, taken once.
  t.deepEqual(
    sockets.map((s) => s.localAddress),
    locals,
  );
  for (const s of sockets) {
    t.is(s.localPort, port);
    const lease = leaseOf(s);
    t.is(lease?.localAddress, s.localAddress);
    t.is(lease?.localPort, port);
  }
  // Every pool is empty now.
  await t.throwsAsync(porter.connect({ host: '127.0.0.1', port: dest, timeout: 5_000 }), {
    code: 'ERR_PORTER_EXHAUSTED',
  });
  // The last socket echoes, and closing it from this side ages the port of its own pool.
  const last = sockets.at(-1) as Socket;
  const echoed = await new Promise<string>((resolve) => {
    last.once('data', (d: Buffer) => resolve(d.toString()));
    last.write('ping');
  });
  t.is(echoed, 'ping');
  await new Promise((resolve) => last.once('close', resolve).destroy());
  const snapshot = porter.snapshot();
  t.deepEqual(
    poolFor(snapshot, '127.0.0.1', dest, locals.at(-1))?.aging.map((a) => a.port),
    [port],
  );
  t.deepEqual(poolFor(snapshot, '127.0.0.1', dest, locals.at(-2))?.inUse, [port]);
  t.deepEqual(poolFor(snapshot, '127.0.0.1', dest, locals[0])?.inUse, [port]);
});
