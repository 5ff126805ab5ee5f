// Connects that settle at once (the usual case on loopback) still let the event loop run:
// a tight loop of awaited connects must not starve close events, which release ports.
import { Porter } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';

test('a tight loop of awaited connects lets closes release their ports', async (t) => {
  const servers = await startServers({ count: 1 });
  t.teardown(() => servers.stop());
  const [port] = servers.ports as [number];
  const [first, last] = await findFreePortBlock(64);
  // 64 ports, far fewer than the connects below: only ports given back by 'close' (reset,
  // so at once) let the loop go on.
  const porter = new Porter({ portRange: [first, last], agingMs: 60_000, kernelFallback: false });
  let timerRan = false;
  const timer = setTimeout(() => {
    timerRan = true;
  }, 0);
  const total = 1_000;
  for (let i = 0; i < total; i++) {
    const socket = await porter.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.resetAndDestroy();
  }
  clearTimeout(timer);
  t.true(timerRan, 'a timer ran during the loop');
  await new Promise((resolve) => setImmediate(resolve));
  const pool = porter.snapshot().find((p) => p.remotePort === port);
  t.deepEqual(pool?.inUse, []);
  t.is(pool?.free, 64);
  t.is(porter.stats().allocations, total);
});
