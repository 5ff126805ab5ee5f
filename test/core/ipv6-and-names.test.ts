import { lookup } from 'node:dns/promises';
import type { LookupFunction, Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown, destroyAll } from '../helpers/sockets.js';

test('IPv6 on ::1: ports from the range, pool keyed by ::, exhaustion', async (t) => {
  const servers = await startServers({ host: '::1' });
  const [first, last] = await findFreePortBlock(3, ['::']);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < 3; i++) sockets.push(await porter.connect({ host: '::1', port }));
  const range = [first, first + 1, last];
  t.deepEqual(
    sockets.map((s) => s.localPort).sort((a, b) => (a as number) - (b as number)),
    range,
  );
  for (const s of sockets) {
    t.is(s.remoteAddress, '::1');
    t.is(s.remoteFamily, 'IPv6');
    t.is(leaseOf(s)?.remoteAddress, '::1');
  }
  const pool = poolFor(porter.snapshot(), '::1', port);
  t.is(pool?.localAddress, '::');
  t.deepEqual(pool?.inUse, range);
  const err = await t.throwsAsync(porter.connect({ host: '::1', port }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_PORTER_EXHAUSTED');
  t.regex(err?.message ?? '', /::1/);
  // A local close ages an IPv6 port as well.
  const one = sockets.shift() as Socket;
  const onePort = one.localPort;
  await destroyAll([one]);
  t.deepEqual(
    poolFor(porter.snapshot(), '::1', port)?.aging.map((a) => a.port),
    [onePort],
  );
});

test('localAddresses apply per family', async (t) => {
  const servers = await startServers({ host: '::' });
  const [first, last] = await findFreePortBlock(2, ['127.0.0.2', '::1']);
  const porter = new Porter({ portRange: [first, last], localAddresses: ['127.0.0.2', '::1'], kernelFallback: false });
  const port = servers.ports[0] as number;
  const v4 = await porter.connect({ host: '127.0.0.1', port });
  const v6 = await porter.connect({ host: '::1', port });
  t.teardown(async () => {
    await destroyAll([v4, v6]);
    await servers.stop();
  });
  t.is(v4.localAddress, '127.0.0.2');
  t.is(v6.localAddress, '::1');
  for (const s of [v4, v6]) t.true(s.localPort === first || s.localPort === last, `${s.localPort}`);
  t.truthy(poolFor(porter.snapshot(), '127.0.0.1', port, '127.0.0.2'));
  t.truthy(poolFor(porter.snapshot(), '::1', port, '::1'));
});

test("host 'localhost' resolves, family 4 is honoured", async (t) => {
  // A dual-stack listener accepts whatever family localhost resolves to.
  const servers = await startServers({ host: '::' });
  const [first, last] = await findFreePortBlock(4, ['0.0.0.0', '::']);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const port = servers.ports[0] as number;
  const sockets = closeAtTeardown(t, servers);
  const expectedAny = (await lookup('localhost')).address;
  const any = await porter.connect({ host: 'localhost', port });
  sockets.push(any);
  t.is(leaseOf(any)?.remoteAddress, expectedAny);
  t.true(porter.snapshot().some((p) => p.remoteAddress === expectedAny && p.remotePort === port));

  const v4 = await porter.connect({ host: 'localhost', port, family: 4 });
  sockets.push(v4);
  t.is(v4.remoteFamily, 'IPv4');
  t.is(leaseOf(v4)?.remoteAddress, (await lookup('localhost', { family: 4 })).address);
  t.true(v4.localPort !== undefined && v4.localPort >= first && v4.localPort <= last);
});

// With family 6 and hints through the real resolver: netns-names.test.ts.

test('family 4 and 6 reach a custom lookup, and its answer is used', async (t) => {
  const servers = await startServers({ host: '::' });
  const [first, last] = await findFreePortBlock(4, ['0.0.0.0', '::']);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const port = servers.ports[0] as number;
  const asked: number[] = [];
  const resolver = ((_host: string, options: { family?: number }, cb: (...args: unknown[]) => void) => {
    const family = options.family ?? 0;
    asked.push(family);
    if (family === 6) cb(null, '::1', 6);
    else cb(null, '127.0.0.1', 4);
  }) as unknown as LookupFunction;
  const v6 = await porter.connect({ host: 'my-broker.test', port, family: 6, lookup: resolver });
  const v4 = await porter.connect({ host: 'my-broker.test', port, family: 4, lookup: resolver });
  t.teardown(async () => {
    await destroyAll([v4, v6]);
    await servers.stop();
  });
  t.deepEqual(asked, [6, 4]);
  t.is(v6.remoteAddress, '::1');
  t.is(v4.remoteAddress, '127.0.0.1');
  t.is(leaseOf(v6)?.remoteAddress, '::1');
});

test('a resolver error is passed on and takes no port', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const failing = ((host: string, _options: unknown, cb: (...args: unknown[]) => void) => {
    cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host }));
  }) as unknown as LookupFunction;
  const err = await t.throwsAsync(porter.connect({ host: 'nowhere.test', port: 80, lookup: failing }));
  t.is((err as NodeJS.ErrnoException).code, 'ENOTFOUND');
  t.deepEqual(porter.snapshot(), []);
});

test('timeout covers a slow resolver', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const never = (() => {}) as unknown as LookupFunction;
  const started = performance.now();
  // The resolver never answers: only the timeout can settle the connect.
  const err = await t.throwsAsync(porter.connect({ host: 'slow.test', port: 80, lookup: never, timeout: 150 }));
  t.is((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
  t.true(performance.now() - started >= 150 - 1);
  t.deepEqual(porter.snapshot(), []);
});
