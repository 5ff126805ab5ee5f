// The bad-input corpus of @porter/core: every public function and method, with wrong
// types, NaN, infinities, huge numbers, out-of-range ports, inverted ranges, empty and
// NUL strings, scopes, IPv4-mapped addresses, 300-character names, throwing getters,
// Proxies, Symbols, BigInts, null-prototype and frozen objects, duck-typed signals and
// double releases (see test/helpers/corpus.ts for what each case asserts). The cases are
// written by API area in test/validation/core/ and run here, one after the other.
import { Agent, Porter } from '@porter/core';
import test from 'ava';
import { corpus } from '../helpers/corpus.js';
import { connectCases } from './core/connect.js';
import { leaseCases } from './core/leases.js';
import { methodCases } from './core/methods.js';
import { optionCases } from './core/options.js';
import { port, porter, start, stop } from './core/target.js';

test.before(start);
test.after.always(stop);

const cases = [...optionCases, ...connectCases, ...leaseCases, ...methodCases];
corpus(cases, () => porter);

test('new Porter: good options are accepted and normalised', (t) => {
  const p = new Porter({
    portRange: [20_000, 20_009],
    agingMs: 0,
    retry: { attempts: 2 },
    kernelFallback: false,
    localAddresses: ['127.0.0.2', '::1'],
  });
  t.deepEqual(p.options, {
    portRange: [20_000, 20_009],
    mode: 'hybrid',
    servicePorts: 'avoid',
    agingMs: 0,
    retry: { attempts: 2 },
    kernelFallback: false,
    localAddresses: ['127.0.0.2', '::1'],
    socketOptions: {},
  });
  t.deepEqual(new Porter().options.portRange, [1024, 65535]);
  t.is(new Porter().options.agingMs, 30_000);
  t.is(new Porter().options.kernelFallback, true);
  t.is(new Porter().options.mode, 'hybrid');
  t.is(new Porter().options.servicePorts, 'avoid');
  // Collisions with other processes are retried by default in the hybrid mode only.
  t.deepEqual(new Porter().options.retry, { attempts: 8 });
  t.deepEqual(new Porter({ mode: 'pool' }).options.retry, { attempts: 0 });
  t.deepEqual(new Porter({ mode: 'kernel' }).options.retry, { attempts: 0 });
  t.deepEqual(new Porter({ mode: 'pool', retry: { attempts: 3 } }).options.retry, { attempts: 3 });
});

test('the corpus of @porter/core has at least 150 cases and covers every export', (t) => {
  t.true(cases.length >= 150, `${cases.length} cases`);
  const covered = new Set(cases.map((c) => c.fn.replace(/^porter\./, '').replace(/^lease\./, '')));
  for (const fn of [
    'connect',
    'allocate',
    'partitionRange',
    'hostPorts',
    'configureDefault',
    'leaseOf',
    'release',
    'poolSummary',
  ]) {
    t.true(covered.has(fn), fn);
  }
});

test('an out-of-range message gives the real bounds', (t) => {
  const bounds = (f: () => unknown): string | undefined => t.throws(f, { code: 'ERR_OUT_OF_RANGE' })?.message;
  const options = { host: '127.0.0.1', port, timeout: 2 ** 53 };
  t.regex(bounds(() => porter.connect(options)) ?? '', /It must be >= 0 && <= 9007199254740991\. Received/);
  t.regex(bounds(() => porter.createConnection(options)) ?? '', /It must be >= 0 && <= 9007199254740991\./);
  t.regex(bounds(() => new Agent({ timeout: -1 })) ?? '', /It must be >= 0 && <= 9007199254740991\./);
  t.regex(bounds(() => new Porter({ agingMs: 2 ** 31 })) ?? '', /It must be >= 0 && <= 2147483647\./);
});
