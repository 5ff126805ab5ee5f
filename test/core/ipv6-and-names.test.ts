import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { closeAtTeardown, destroyAll, findFreePortBlock, startServers } from '../helpers/servers.js';
import { poolFor } from '../helpers/snapshot.js';

test('IPv6 on ::1: ports from the range, pool keyed by ::, exhaustion', async (t) => {
  const servers = await startServers({ host: '::1' });
  const [first, last] = await findFreePortBlock(3, ['::']);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const sockets = closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  for (let i = 0; i < 3; i++) sockets.push(await porter.connect({ host: '::1', port }));
  // The three ports of the range, in the walk's order from a random start.
  const start = sockets[0]?.localPort as number;
  t.deepEqual(
    sockets.map((s) => s.localPort),
    [0, 1, 2].map((i) => first + ((start - first + i) % 3)),
  );
  for (const s of sockets) {
    t.is(s.remoteAddress, '::1');
    t.is(s.remoteFamily, 'IPv6');
    t.is(leaseOf(s)?.remoteAddress, '::1');
  }
  const pool = poolFor(porter.snapshot(), '::1', port);
  t.is(pool?.localAddress, '::');
  t.deepEqual(pool?.inUse, [first, first + 1, last]); // sorted
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
  for (const s of [v4, v6]) t.true((s.localPort as number) >= first && (s.localPort as number) <= last);
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

/** Whether /etc/hosts names localhost with an IPv6 address (then no DNS query is needed). */
function hostsHasIpv6Localhost(): boolean {
  try {
    return readFileSync('/etc/hosts', 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim().split(/\s+/))
      .some(([address, ...names]) => address !== undefined && isIP(address) === 6 && names.includes('localhost'));
  } catch {
    return false;
  }
}

test("host 'localhost' with family 6 resolves to an IPv6 address", async (t) => {
  if (!hostsHasIpv6Localhost()) {
    // Looking it up would go past /etc/hosts to DNS: this test sends nothing off the host.
    t.log('skipped: /etc/hosts gives localhost no IPv6 address (the custom lookup test covers family 6)');
    t.pass();
    return;
  }
  const servers = await startServers({ host: '::' });
  t.teardown(() => servers.stop());
  const [first, last] = await findFreePortBlock(2, ['::']);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const port = servers.ports[0] as number;
  const expected = (await lookup('localhost', { family: 6 })).address;
  const v6 = await porter.connect({ host: 'localhost', port, family: 6 });
  t.is(v6.remoteFamily, 'IPv6');
  t.is(leaseOf(v6)?.remoteAddress, expected);
  await destroyAll([v6]);
});

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
  const err = await t.throwsAsync(porter.connect({ host: 'slow.test', port: 80, lookup: never, timeout: 150 }));
  t.is((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
  t.true(performance.now() - started < 2_000);
  t.deepEqual(porter.snapshot(), []);
});
