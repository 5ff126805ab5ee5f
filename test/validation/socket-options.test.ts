// socketOptions with bad values throw synchronously with Node's codes and classes, on
// new Porter() and on connect() (taking no port), before anything reaches the kernel; good
// ones are normalised. What each option does to a socket is tested in test/core/sockopts-*.test.ts.

import { Agent, type ConnectOptions, Porter, type PorterOptions } from '@porter/core';
import { connect as tlsConnect } from '@porter/tls';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';

type Code = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE';
const classOf = (code: Code): typeof TypeError | typeof RangeError =>
  code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError;
// These tests pass what TypeScript would reject, as JavaScript users can.
const bad = <T>(value: unknown): T => value as T;

const cases: [string, unknown, Code][] = [
  ['a number', 5, 'ERR_INVALID_ARG_TYPE'],
  ['null', null, 'ERR_INVALID_ARG_TYPE'],
  ['an array', [], 'ERR_INVALID_ARG_TYPE'],
  ['an unknown field (a misspelling would do nothing)', { userTimeout: 2000 }, 'ERR_INVALID_ARG_VALUE'],
  ['userTimeoutMs a string', { userTimeoutMs: '2000' }, 'ERR_INVALID_ARG_TYPE'],
  ['userTimeoutMs negative', { userTimeoutMs: -1 }, 'ERR_OUT_OF_RANGE'],
  ['userTimeoutMs a fraction', { userTimeoutMs: 1.5 }, 'ERR_OUT_OF_RANGE'],
  ['userTimeoutMs beyond an int of ms', { userTimeoutMs: 2 ** 31 }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive a number', { keepAlive: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive null', { keepAlive: null }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive with an unknown field', { keepAlive: { idle: 5000 } }, 'ERR_INVALID_ARG_VALUE'],
  ['keepAlive.idleMs below a second', { keepAlive: { idleMs: 500 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.idleMs not whole seconds', { keepAlive: { idleMs: 1500 } }, 'ERR_INVALID_ARG_VALUE'],
  ['keepAlive.idleMs beyond 32767 s', { keepAlive: { idleMs: 32_768_000 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.intervalMs a string', { keepAlive: { intervalMs: '5000' } }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive.intervalMs not whole seconds', { keepAlive: { intervalMs: 2001 } }, 'ERR_INVALID_ARG_VALUE'],
  ['keepAlive.count 0', { keepAlive: { count: 0 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.count 128', { keepAlive: { count: 128 } }, 'ERR_OUT_OF_RANGE'],
  ['mark negative', { mark: -1 }, 'ERR_OUT_OF_RANGE'],
  ['mark beyond 32 bits', { mark: 2 ** 32 }, 'ERR_OUT_OF_RANGE'],
  ['mark a string', { mark: '0x2a' }, 'ERR_INVALID_ARG_TYPE'],
  ['bindToDevice a number', { bindToDevice: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['bindToDevice of 16 bytes', { bindToDevice: 'sixteen-bytes-xx' }, 'ERR_INVALID_ARG_VALUE'],
  ['bindToDevice of 15 characters, 16 bytes', { bindToDevice: 'é'.padEnd(15, 'x') }, 'ERR_INVALID_ARG_VALUE'],
  ['bindToDevice with a NUL', { bindToDevice: 'lo\0' }, 'ERR_INVALID_ARG_VALUE'],
  ['tos 256', { tos: 256 }, 'ERR_OUT_OF_RANGE'],
  ['tos with an ECN bit', { tos: 0xb9 }, 'ERR_INVALID_ARG_VALUE'],
  ['tos a string', { tos: 'ef' }, 'ERR_INVALID_ARG_TYPE'],
  ['freebind a number', { freebind: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['transparent a string', { transparent: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
  ['lingerZeroOnClose a number', { lingerZeroOnClose: 0 }, 'ERR_INVALID_ARG_TYPE'],
  ['fastOpen a string', { fastOpen: 'true' }, 'ERR_INVALID_ARG_TYPE'],
  ['congestion a number', { congestion: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ['congestion of 16 bytes', { congestion: 'a-very-long-algo' }, 'ERR_INVALID_ARG_VALUE'],
  // What the binding and the core used to check as well: TypeScript's checks are the only ones.
  ['a Symbol', Symbol('o'), 'ERR_INVALID_ARG_TYPE'],
  ['userTimeoutMs NaN', { userTimeoutMs: Number.NaN }, 'ERR_OUT_OF_RANGE'],
  ['userTimeoutMs Infinity', { userTimeoutMs: Number.POSITIVE_INFINITY }, 'ERR_OUT_OF_RANGE'],
  ['userTimeoutMs a BigInt', { userTimeoutMs: 2000n }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive an array', { keepAlive: [] }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive a string', { keepAlive: 'on' }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive.idleMs a string', { keepAlive: { idleMs: '5000' } }, 'ERR_INVALID_ARG_TYPE'],
  ['keepAlive.idleMs NaN', { keepAlive: { idleMs: Number.NaN } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.idleMs negative', { keepAlive: { idleMs: -1000 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.intervalMs below a second', { keepAlive: { intervalMs: 999 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.intervalMs beyond 32767 s', { keepAlive: { intervalMs: 32_768_000 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.count a fraction', { keepAlive: { count: 1.5 } }, 'ERR_OUT_OF_RANGE'],
  ['keepAlive.count a string', { keepAlive: { count: '3' } }, 'ERR_INVALID_ARG_TYPE'],
  ['mark a fraction', { mark: 1.5 }, 'ERR_OUT_OF_RANGE'],
  ['mark NaN', { mark: Number.NaN }, 'ERR_OUT_OF_RANGE'],
  ['mark a BigInt', { mark: 1n }, 'ERR_INVALID_ARG_TYPE'],
  ['tos a fraction', { tos: 0.5 }, 'ERR_OUT_OF_RANGE'],
  ['tos negative', { tos: -4 }, 'ERR_OUT_OF_RANGE'],
  ['freebind null', { freebind: null }, 'ERR_INVALID_ARG_TYPE'],
  ['congestion with a NUL', { congestion: 'reno\0' }, 'ERR_INVALID_ARG_VALUE'],
  ['congestion of 15 characters, 16 bytes', { congestion: 'é'.padEnd(15, 'x') }, 'ERR_INVALID_ARG_VALUE'],
];

for (const [name, socketOptions, code] of cases) {
  test(`new Porter: socketOptions ${name} throws ${code}`, (t) => {
    const err = t.throws(() => new Porter(bad<PorterOptions>({ socketOptions })), {
      code,
      instanceOf: classOf(code),
    });
    t.regex(err?.message ?? '', /options\.socketOptions/);
  });

  test(`connect, createConnection, Agent: socketOptions ${name} throws ${code} synchronously, taking no port`, async (t) => {
    const [first, last] = await findFreePortBlock(2);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false });
    const options = bad<ConnectOptions>({ host: '127.0.0.1', port: 80, socketOptions });
    t.throws(() => porter.connect(options), { code, instanceOf: classOf(code) });
    t.throws(() => porter.createConnection(options), { code, instanceOf: classOf(code) });
    t.throws(() => new Agent(bad({ porter, socketOptions })), { code, instanceOf: classOf(code) });
    t.is(porter.stats().allocations, 0);
    t.deepEqual(porter.snapshot(), []);
  });
}

test('@porter/tls: bad socketOptions throw synchronously, as the TCP connect would', async (t) => {
  const [first, last] = await findFreePortBlock(2);
  const porter = new Porter({ portRange: [first, last], kernelFallback: false });
  t.throws(() => tlsConnect(bad({ host: '127.0.0.1', port: 443, porter, socketOptions: { tos: 3 } })), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /options\.socketOptions\.tos/,
  });
  t.is(porter.stats().allocations, 0);
});

test('good socketOptions are normalised: the fields given, keepAlive true as {}', (t) => {
  const every = {
    userTimeoutMs: 2_000,
    keepAlive: { idleMs: 30_000, intervalMs: 5_000, count: 3 },
    mark: 2 ** 32 - 1,
    bindToDevice: 'fifteen-bytes-x',
    tos: 0xb8,
    freebind: true,
    transparent: false,
    lingerZeroOnClose: true,
    fastOpen: true,
    congestion: 'reno',
  };
  t.deepEqual(new Porter({ socketOptions: every }).options.socketOptions, every);
  t.deepEqual(new Porter({ socketOptions: { keepAlive: true } }).options.socketOptions, { keepAlive: {} });
  t.deepEqual(new Porter({ socketOptions: { keepAlive: false, mark: 0 } }).options.socketOptions, {
    keepAlive: false,
    mark: 0,
  });
  t.deepEqual(new Porter().options.socketOptions, {});
  // The Porter keeps its own copy: changing the object given later changes nothing.
  const given = { userTimeoutMs: 1_000 };
  const porter = new Porter({ socketOptions: given });
  given.userTimeoutMs = 5;
  t.deepEqual(porter.options.socketOptions, { userTimeoutMs: 1_000 });
});
