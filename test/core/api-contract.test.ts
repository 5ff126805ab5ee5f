// The example of the API document, written against its names only, on loopback.
import { createRequire } from 'node:module';
import { allocate, connect, defaultPorter, leaseOf, Porter, snapshot } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closed } from '../helpers/sockets.js';

test('the documented example behaves as documented', async (t) => {
  const servers = await startServers({ count: 2 });
  t.teardown(() => servers.stop());
  const [broker, redis] = servers.ports as [number, number];
  const [first, last] = await findFreePortBlock(8);

  const porter = new Porter({
    portRange: [first, last],
    agingMs: 30_000,
    retry: { attempts: 0 },
    kernelFallback: true,
  });

  const socket = await porter.connect({ host: '127.0.0.1', port: broker, timeout: 5_000 });
  t.is(socket.constructor.name, 'Socket');
  const port = socket.localPort as number;
  t.true(port >= first && port <= last, `${port} from the range`);
  t.is(socket.remotePort, broker);

  const lease = leaseOf(socket);
  t.like(lease, { localPort: port, remoteAddress: '127.0.0.1', remotePort: broker, released: false });
  t.is(typeof lease?.localAddress, 'string');

  const l = porter.allocate({ address: '127.0.0.1', port: broker });
  t.true(l.localPort >= first && l.localPort <= last);
  t.not(l.localPort, port, 'a port in use is not handed out twice');
  const beforeReleases = performance.now();
  t.true(l.release({ aging: true }));

  // This side closes first: the socket's port goes into aging too.
  const done = closed(socket);
  socket.end();
  await done;
  t.true(lease?.released);

  const snap = porter.snapshot();
  const sinceReleases = performance.now() - beforeReleases;
  t.is(snap.length, 1);
  const pool = snap[0];
  t.like(pool, { localAddress: '0.0.0.0', remoteAddress: '127.0.0.1', remotePort: broker, inUse: [] });
  t.deepEqual(
    pool?.aging.map((a) => a.port).sort((a, b) => a - b),
    [port, l.localPort].sort((a, b) => a - b),
  );
  // 30 s from each release, less what has passed since: no fixed window.
  for (const a of pool?.aging ?? []) {
    t.true(a.remainingMs <= 30_000 && a.remainingMs >= 30_000 - sinceReleases - 1, `${a.remainingMs}`);
  }
  t.is(pool?.free, last - first + 1 - 2);

  // The default instance behind the module-level functions.
  const viaDefault = await connect({ host: '127.0.0.1', port: redis });
  const defLease = leaseOf(viaDefault);
  t.is(defLease?.localPort, viaDefault.localPort);
  const taken = allocate({ address: '127.0.0.1', port: redis });
  const defPool = snapshot().find((p) => p.remoteAddress === '127.0.0.1' && p.remotePort === redis);
  t.truthy(defPool);
  t.true(defPool?.inUse.includes(viaDefault.localPort as number));
  t.true(defPool?.inUse.includes(taken.localPort));
  // Default range [1024, 65535]: every port accounted for, but those /etc/services names.
  t.is(
    (defPool?.free ?? 0) + (defPool?.inUse.length ?? 0) + (defPool?.aging.length ?? 0),
    65535 - 1024 + 1 - defaultPorter().capacity().servicePorts,
  );
  // The default instance is not the Porter above.
  t.is(
    porter.snapshot().find((p) => p.remotePort === redis),
    undefined,
  );
  taken.release({ aging: false });
  const gone = closed(viaDefault);
  viaDefault.destroy();
  await gone;
  t.true(defLease?.released);
});

test('documented error codes: ERR_PORTER_EXHAUSTED names destination and range', async (t) => {
  const [first, last] = await findFreePortBlock(1);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  porter.allocate({ address: '127.0.0.1', port: 8883 });
  const err = t.throws(() => porter.allocate({ address: '127.0.0.1', port: 8883 }), { code: 'ERR_PORTER_EXHAUSTED' });
  t.regex(err?.message ?? '', /127\.0\.0\.1:8883/);
  t.regex(err?.message ?? '', new RegExp(String(first)));
  t.throws(() => new Porter({ portRange: [5, 1] }), { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError });
  t.throws(() => new Porter({ agingMs: -5 }), { code: 'ERR_OUT_OF_RANGE', instanceOf: RangeError });
  t.throws(() => new Porter({ kernelFallback: bad('no') }), { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError });
});

function bad<T>(value: unknown): T {
  return value as T;
}

test('the CommonJS entry exports the same names', (t) => {
  const require = createRequire(import.meta.url);
  const cjs = require('@porter/core') as Record<string, unknown>;
  for (const name of ['Porter', 'connect', 'allocate', 'snapshot', 'leaseOf']) {
    t.is(typeof cjs[name], 'function', name);
  }
});
