import { inspect } from 'node:util';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown, closed } from '../helpers/sockets.js';

test('util.inspect of a Porter shows its options and the totals over its pools', async (t) => {
  const servers = await startServers({ mode: 'echo', count: 2 });
  const range = await findFreePortBlock(16);
  const porter = new Porter({ portRange: range, agingMs: 60_000, retry: { attempts: 2 }, kernelFallback: false });
  const sockets = closeAtTeardown(t, servers);
  for (const port of servers.ports) {
    for (let i = 0; i < 3; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port, timeout: 5_000 }));
  }
  const first = sockets[0];
  if (first === undefined) throw new Error('no socket');
  const done = closed(first);
  first.end();
  await done;

  const text = inspect(porter, { breakLength: Number.POSITIVE_INFINITY });
  t.log(text);
  t.true(text.startsWith('Porter {'), text);
  t.true(text.includes(`portRange: [ ${range[0]}, ${range[1]} ]`), text);
  t.true(text.includes('agingMs: 60000'), text);
  t.true(text.includes('retry: { attempts: 2 }'), text);
  t.true(text.includes('kernelFallback: false'), text);
  // Two pools, 5 ports in use, 1 aging, the rest of both ranges free: as poolCounts says.
  const counts = porter.poolCounts();
  t.is(counts.length, 2);
  const free = counts.reduce((n, p) => n + p.free, 0);
  t.is(free, 2 * 16 - 6);
  t.true(text.includes(`pools: 2, inUse: 5, aging: 1, free: ${free}`), text);
});

test('util.inspect of a lease shows every field, released included', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  const porter = new Porter({ portRange: await findFreePortBlock(4) });
  const sockets = closeAtTeardown(t, servers);
  const socket = await porter.connect({ host: '127.0.0.1', port: servers.ports[0] as number, timeout: 5_000 });
  sockets.push(socket);
  const lease = leaseOf(socket);
  if (lease === undefined) throw new Error('no lease');
  const localPort = socket.localPort;
  const expected = (released: boolean): string =>
    `PortLease { localAddress: '127.0.0.1', localPort: ${localPort}, remoteAddress: '127.0.0.1', remotePort: ${servers.ports[0]}, released: ${released} }`;
  t.is(inspect(lease, { breakLength: Number.POSITIVE_INFINITY }), expected(false));
  const done = closed(socket);
  socket.destroy();
  await done;
  t.is(inspect(lease, { breakLength: Number.POSITIVE_INFINITY }), expected(true));
  // Nested deeper than the depth asked for, it stays short.
  t.is(inspect({ a: { lease } }, { depth: 0 }), '{ a: [Object] }');
  t.is(inspect({ lease }, { depth: 0 }), '{ lease: [PortLease] }');
});
