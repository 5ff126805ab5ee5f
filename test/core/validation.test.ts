import { type ConnectOptions, Porter, type PorterOptions } from '@porter/core';
import test from 'ava';
import { findFreePortBlock, startServers } from '../helpers/servers.js';

type Code =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_SOCKET_BAD_PORT'
  | 'ERR_INVALID_IP_ADDRESS'
  | 'ERR_MISSING_ARGS';
// The classes Node throws these codes with.
const classOf = (code: Code): typeof TypeError | typeof RangeError =>
  code === 'ERR_OUT_OF_RANGE' || code === 'ERR_SOCKET_BAD_PORT' ? RangeError : TypeError;

// Casts: these tests pass what TypeScript would reject, as JavaScript users can.
const bad = <T>(value: unknown): T => value as T;

const constructorCases: [string, unknown, Code][] = [
  ['options null', null, 'ERR_INVALID_ARG_TYPE'],
  ['options a number', 5, 'ERR_INVALID_ARG_TYPE'],
  ['portRange a string', { portRange: 'all' }, 'ERR_INVALID_ARG_TYPE'],
  ['portRange of one element', { portRange: [1024] }, 'ERR_INVALID_ARG_TYPE'],
  ['portRange of three elements', { portRange: [1024, 2000, 3000] }, 'ERR_INVALID_ARG_TYPE'],
  ['portRange with a non-number', { portRange: [{}, 2000] }, 'ERR_INVALID_ARG_TYPE'],
  ['portRange starting at 0', { portRange: [0, 2000] }, 'ERR_SOCKET_BAD_PORT'],
  ['portRange beyond 65535', { portRange: [1024, 65536] }, 'ERR_SOCKET_BAD_PORT'],
  ['portRange with a fraction', { portRange: [1024.5, 2000] }, 'ERR_SOCKET_BAD_PORT'],
  ['portRange reversed', { portRange: [2000, 1024] }, 'ERR_INVALID_ARG_VALUE'],
  ['agingMs a string', { agingMs: '100' }, 'ERR_INVALID_ARG_TYPE'],
  ['agingMs negative', { agingMs: -1 }, 'ERR_OUT_OF_RANGE'],
  ['agingMs NaN', { agingMs: Number.NaN }, 'ERR_OUT_OF_RANGE'],
  ['agingMs Infinity', { agingMs: Number.POSITIVE_INFINITY }, 'ERR_OUT_OF_RANGE'],
  ['retry a number', { retry: 3 }, 'ERR_INVALID_ARG_TYPE'],
  ['retry.attempts a string', { retry: { attempts: '1' } }, 'ERR_INVALID_ARG_TYPE'],
  ['retry.attempts negative', { retry: { attempts: -1 } }, 'ERR_OUT_OF_RANGE'],
  ['retry.attempts a fraction', { retry: { attempts: 1.5 } }, 'ERR_OUT_OF_RANGE'],
  ['kernelFallback a string', { kernelFallback: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
  ['kernelFallback a number', { kernelFallback: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['mode unknown', { mode: 'fast' }, 'ERR_INVALID_ARG_VALUE'],
  ['mode a number', { mode: 1 }, 'ERR_INVALID_ARG_VALUE'],
  ['localAddresses a string', { localAddresses: '127.0.0.2' }, 'ERR_INVALID_ARG_TYPE'],
  ['localAddresses with a name', { localAddresses: ['localhost'] }, 'ERR_INVALID_IP_ADDRESS'],
  ['localAddresses with a number', { localAddresses: [127] }, 'ERR_INVALID_ARG_TYPE'],
];

for (const [name, options, code] of constructorCases) {
  test(`new Porter: ${name} throws ${code}`, (t) => {
    const err = t.throws(() => new Porter(bad<PorterOptions>(options)), { code, instanceOf: classOf(code) });
    t.regex(err?.message ?? '', /options/);
  });
}

test('new Porter: good options are accepted and normalised', (t) => {
  const porter = new Porter({
    portRange: [20_000, 20_009],
    agingMs: 0,
    retry: { attempts: 2 },
    kernelFallback: false,
    localAddresses: ['127.0.0.2', '::1'],
  });
  t.deepEqual(porter.options, {
    portRange: [20_000, 20_009],
    mode: 'hybrid',
    agingMs: 0,
    retry: { attempts: 2 },
    kernelFallback: false,
    localAddresses: ['127.0.0.2', '::1'],
  });
  t.deepEqual(new Porter().options.portRange, [1024, 65535]);
  t.is(new Porter().options.agingMs, 30_000);
  t.is(new Porter().options.kernelFallback, true);
  t.is(new Porter().options.mode, 'hybrid');
  // Collisions with other processes are retried by default in the hybrid mode only.
  t.deepEqual(new Porter().options.retry, { attempts: 8 });
  t.deepEqual(new Porter({ mode: 'pool' }).options.retry, { attempts: 0 });
  t.deepEqual(new Porter({ mode: 'kernel' }).options.retry, { attempts: 0 });
  t.deepEqual(new Porter({ mode: 'pool', retry: { attempts: 3 } }).options.retry, { attempts: 3 });
});

const connectCases: [string, unknown, Code][] = [
  ['options undefined', undefined, 'ERR_INVALID_ARG_TYPE'],
  ['options a string', '127.0.0.1:80', 'ERR_INVALID_ARG_TYPE'],
  ['port missing', { host: '127.0.0.1' }, 'ERR_MISSING_ARGS'],
  ['port 0', { host: '127.0.0.1', port: 0 }, 'ERR_SOCKET_BAD_PORT'],
  ['port negative', { host: '127.0.0.1', port: -1 }, 'ERR_SOCKET_BAD_PORT'],
  ['port 65536', { host: '127.0.0.1', port: 65536 }, 'ERR_SOCKET_BAD_PORT'],
  ['port a fraction', { host: '127.0.0.1', port: 80.5 }, 'ERR_SOCKET_BAD_PORT'],
  ['port a word', { host: '127.0.0.1', port: 'http' }, 'ERR_SOCKET_BAD_PORT'],
  ['port an object', { host: '127.0.0.1', port: {} }, 'ERR_INVALID_ARG_TYPE'],
  ['host a number', { host: 127, port: 80 }, 'ERR_INVALID_ARG_TYPE'],
  ['host empty', { host: '', port: 80 }, 'ERR_INVALID_ARG_TYPE'],
  ['timeout a string', { host: '127.0.0.1', port: 80, timeout: '100' }, 'ERR_INVALID_ARG_TYPE'],
  ['timeout negative', { host: '127.0.0.1', port: 80, timeout: -1 }, 'ERR_OUT_OF_RANGE'],
  ['timeout NaN', { host: '127.0.0.1', port: 80, timeout: Number.NaN }, 'ERR_OUT_OF_RANGE'],
  ['signal a plain object', { host: '127.0.0.1', port: 80, signal: {} }, 'ERR_INVALID_ARG_TYPE'],
  ['signal a string', { host: '127.0.0.1', port: 80, signal: 'abort' }, 'ERR_INVALID_ARG_TYPE'],
  ['signal null', { host: '127.0.0.1', port: 80, signal: null }, 'ERR_INVALID_ARG_TYPE'],
  ['family 5', { host: '127.0.0.1', port: 80, family: 5 }, 'ERR_INVALID_ARG_VALUE'],
  ['family a word', { host: '127.0.0.1', port: 80, family: 'inet' }, 'ERR_INVALID_ARG_VALUE'],
  ['localAddress a name', { host: '127.0.0.1', port: 80, localAddress: 'localhost' }, 'ERR_INVALID_IP_ADDRESS'],
  ['localAddress a number', { host: '127.0.0.1', port: 80, localAddress: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['localPort set', { host: '127.0.0.1', port: 80, localPort: 40_000 }, 'ERR_INVALID_ARG_VALUE'],
  ['noDelay a string', { host: '127.0.0.1', port: 80, noDelay: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive a number', { host: '127.0.0.1', port: 80, keepAlive: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAliveInitialDelay negative', { host: '127.0.0.1', port: 80, keepAliveInitialDelay: -5 }, 'ERR_OUT_OF_RANGE'],
  ['lookup not a function', { host: 'localhost', port: 80, lookup: 'dns' }, 'ERR_INVALID_ARG_TYPE'],
];

for (const [name, options, code] of connectCases) {
  test(`connect: ${name} throws ${code} synchronously, taking no port`, async (t) => {
    const [first, last] = await findFreePortBlock(2);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    t.throws(() => porter.connect(bad<ConnectOptions>(options)), { code, instanceOf: classOf(code) });
    t.is(porter.stats().allocations, 0);
    t.deepEqual(porter.snapshot(), []);
  });
}

test('connect: a port given as a numeric string is accepted, as net.connect does', async (t) => {
  const servers = await startServers();
  t.teardown(() => servers.stop());
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  const socket = await porter.connect({ host: '127.0.0.1', port: String(servers.ports[0]) });
  t.is(socket.remotePort, servers.ports[0]);
  socket.destroy();
});

test('connect: a local address of the other family than the destination is refused', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  // Knowable only once the host is resolved, so it may reject rather than throw.
  const err = await t.throwsAsync(async () => porter.connect({ host: '127.0.0.1', port: 80, localAddress: '::1' }));
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_VALUE');
  t.deepEqual(
    porter.snapshot().flatMap((p) => p.inUse),
    [],
  );
});

const allocateCases: [string, unknown, Code][] = [
  ['options undefined', undefined, 'ERR_INVALID_ARG_TYPE'],
  ['options null', null, 'ERR_INVALID_ARG_TYPE'],
  ['address missing', { port: 80 }, 'ERR_INVALID_ARG_TYPE'],
  ['address a host name', { address: 'localhost', port: 80 }, 'ERR_INVALID_IP_ADDRESS'],
  ['address a number', { address: 0x7f000001, port: 80 }, 'ERR_INVALID_ARG_TYPE'],
  ['port missing', { address: '127.0.0.1' }, 'ERR_INVALID_ARG_TYPE'],
  ['port 0', { address: '127.0.0.1', port: 0 }, 'ERR_SOCKET_BAD_PORT'],
  ['port 70000', { address: '127.0.0.1', port: 70_000 }, 'ERR_SOCKET_BAD_PORT'],
  ['port a fraction', { address: '127.0.0.1', port: 1.5 }, 'ERR_SOCKET_BAD_PORT'],
  ['localAddress not an IP', { address: '127.0.0.1', port: 80, localAddress: 'eth0' }, 'ERR_INVALID_IP_ADDRESS'],
  [
    'localAddress of the other family',
    { address: '127.0.0.1', port: 80, localAddress: '::1' },
    'ERR_INVALID_ARG_VALUE',
  ],
];

for (const [name, options, code] of allocateCases) {
  test(`allocate: ${name} throws ${code}`, async (t) => {
    const [first, last] = await findFreePortBlock(2);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    t.throws(() => porter.allocate(bad<{ address: string; port: number }>(options)), {
      code,
      instanceOf: classOf(code),
    });
    t.is(porter.stats().allocations, 0);
  });
}

// Known bug: validatePort() accepts '80' but allocate() hands the raw string to the
// native route, which fails with ERR_PORTER_INTERNAL. Either a lease for port 80 or
// ERR_INVALID_ARG_TYPE would be right; remove `.failing` once fixed.
test('allocate: a port given as a numeric string is either accepted or refused as a bad type', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  try {
    const lease = porter.allocate(bad<{ address: string; port: number }>({ address: '127.0.0.1', port: '80' }));
    t.is(lease.remotePort, 80);
    lease.release({ aging: false });
  } catch (e) {
    t.is((e as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_TYPE');
  }
});

const releaseCases: [string, unknown, Code][] = [
  ['options null', null, 'ERR_INVALID_ARG_TYPE'],
  ['options a boolean', false, 'ERR_INVALID_ARG_TYPE'],
  ['aging a string', { aging: 'no' }, 'ERR_INVALID_ARG_TYPE'],
  ['aging a number', { aging: 0 }, 'ERR_INVALID_ARG_TYPE'],
];

for (const [name, options, code] of releaseCases) {
  test(`lease.release: ${name} throws ${code} and releases nothing`, async (t) => {
    const [first, last] = await findFreePortBlock(2);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    const lease = porter.allocate({ address: '127.0.0.1', port: 80 });
    t.throws(() => lease.release(bad<{ aging: boolean }>(options)), { code, instanceOf: classOf(code) });
    t.false(lease.released);
    t.deepEqual(porter.snapshot()[0]?.inUse, [lease.localPort]);
    t.true(lease.localPort >= first && lease.localPort <= last);
    t.true(lease.release({ aging: false }));
  });
}
