// The bad-input corpus of @porter/metrics: registerPorterMetrics, serveMetrics and what
// they return (see test/helpers/corpus.ts for what each case asserts).
import { createServer, type Server } from 'node:net';
import { Porter } from '@porter/core';
import {
  ERR_METRICS_REGISTERED,
  type MetricsServer,
  type PorterMetrics,
  registerPorterMetrics,
  serveMetrics,
} from '@porter/metrics';
import test from 'ava';
import { Registry } from 'prom-client';
import {
  bad,
  type Case,
  corpus,
  type Expect,
  forwardingProxy,
  LONG_NAME,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../helpers/corpus.js';

const porter = new Porter({ portRange: [40_000, 40_009], agingMs: 0 });
let taken: Server;
let takenPort = 0;

test.before(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});
test.after.always(() => taken?.close());

const cases: Case[] = [];
const add = (fn: string, rows: [string, () => unknown, Expect][]): void => {
  for (const [input, call, expect] of rows) cases.push({ fn, input, call, expect });
};

// --- registerPorterMetrics(options) -------------------------------------------------------
const register = (options: unknown) => () => registerPorterMetrics(bad(options));
/** Options with a registry of their own, so that every accepted case registers afresh. */
const fresh = (extra: object) => ({ porter, registry: new Registry(), ...extra });
const registered: Expect = {
  accepts: (m) => {
    const metrics = m as PorterMetrics;
    const ok = metrics.names.length === 13;
    metrics.unregister();
    return ok;
  },
};
add('registerPorterMetrics', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    register(v),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  // The `porter` option is checked as every package checks it (validatePorter).
  ['porter a plain object', register(fresh({ porter: {} })), throws('ERR_INVALID_ARG_TYPE')],
  ['porter a number', register(fresh({ porter: 5 })), throws('ERR_INVALID_ARG_TYPE')],
  ['porter a string', register(fresh({ porter: 'default' })), throws('ERR_INVALID_ARG_TYPE')],
  ['porter null', register(fresh({ porter: null })), throws('ERR_INVALID_ARG_TYPE')],
  [
    'porter whose methods are not functions',
    register(fresh({ porter: { poolSummary: 1, stats: 2 } })),
    throws('ERR_INVALID_ARG_TYPE'),
  ],
  [
    'porter undefined: the default',
    () => registerPorterMetrics(bad({ porter: undefined, registry: new Registry() })),
    registered,
  ],
  ['registry a plain object', register({ porter, registry: {} }), throws('ERR_INVALID_ARG_VALUE')],
  ['registry a number', register({ porter, registry: 5 }), throws('ERR_INVALID_ARG_VALUE')],
  ['prefix a number', register(fresh({ prefix: 5 })), throws('ERR_INVALID_ARG_TYPE')],
  ['prefix a Symbol', register(fresh({ prefix: Symbol('p') })), throws('ERR_INVALID_ARG_TYPE')],
  ['prefix starting with a digit', register(fresh({ prefix: '1porter_' })), throws('ERR_INVALID_ARG_VALUE')],
  ['prefix with a space', register(fresh({ prefix: 'my porter_' })), throws('ERR_INVALID_ARG_VALUE')],
  ['prefix with a NUL', register(fresh({ prefix: 'porter\0_' })), throws('ERR_INVALID_ARG_VALUE')],
  ['prefix with a dash', register(fresh({ prefix: 'my-porter_' })), throws('ERR_INVALID_ARG_VALUE')],
  ['prefix empty', () => registerPorterMetrics(fresh({ prefix: '' })), registered],
  ['prefix of 300 characters', () => registerPorterMetrics(fresh({ prefix: `${'p'.repeat(299)}_` })), registered],
  ['maxPools -1', register(fresh({ maxPools: -1 })), throws('ERR_OUT_OF_RANGE')],
  ['maxPools 1.5', register(fresh({ maxPools: 1.5 })), throws('ERR_OUT_OF_RANGE')],
  ['maxPools NaN', register(fresh({ maxPools: Number.NaN })), throws('ERR_OUT_OF_RANGE')],
  ['maxPools Infinity', register(fresh({ maxPools: Number.POSITIVE_INFINITY })), throws('ERR_OUT_OF_RANGE')],
  ['maxPools 2^31', register(fresh({ maxPools: 2 ** 31 })), throws('ERR_OUT_OF_RANGE')],
  ['maxPools a string', register(fresh({ maxPools: '10' })), throws('ERR_INVALID_ARG_TYPE')],
  ['maxPools a BigInt', register(fresh({ maxPools: 10n })), throws('ERR_INVALID_ARG_TYPE')],
  ['maxPools 0', () => registerPorterMetrics(fresh({ maxPools: 0 })), registered],
  ['a throwing getter', register(throwingGetter('porter')), throws('E_GETTER', Error)],
  ['a throwing Proxy', register(throwingProxy()), throws('E_PROXY', Error)],
  ['a forwarding Proxy', () => registerPorterMetrics(forwardingProxy(fresh({}))), registered],
  ['a null-prototype object', () => registerPorterMetrics(nullProto(fresh({}))), registered],
  ['a frozen object', () => registerPorterMetrics(Object.freeze(fresh({}))), registered],
  [
    'twice in one registry: nothing registered the second time',
    () => {
      const registry = new Registry();
      const first = registerPorterMetrics({ porter, registry });
      const count = registry.getMetricsAsArray().length;
      try {
        registerPorterMetrics({ porter, registry });
      } catch (e) {
        if (registry.getMetricsAsArray().length !== count) throw new Error('the failed call registered something');
        throw e;
      } finally {
        first.unregister();
      }
    },
    throws(ERR_METRICS_REGISTERED, Error),
  ],
  [
    'unregister twice',
    () => {
      const m = registerPorterMetrics(fresh({}));
      m.unregister();
      m.unregister();
      return m.names.length;
    },
    { accepts: (n) => n === 13 },
  ],
]);

// --- serveMetrics(options) ----------------------------------------------------------------
const serve = (options: unknown) => () => serveMetrics(bad(options));
const served: Expect = {
  accepts: async (s) => {
    const server = s as MetricsServer;
    const ok = server.port > 0 && server.url.endsWith('/metrics');
    await server.close();
    await server.close();
    return ok;
  },
};
const local = (extra: object) => ({ port: 0, registry: new Registry(), ...extra });
add('serveMetrics', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    serve(v),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['port -1', serve(local({ port: -1 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port 65536', serve(local({ port: 65536 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port NaN', serve(local({ port: Number.NaN })), throws('ERR_SOCKET_BAD_PORT')],
  ['port 1.5', serve(local({ port: 1.5 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port a word', serve(local({ port: 'metrics' })), throws('ERR_SOCKET_BAD_PORT')],
  ['port a BigInt', serve(local({ port: 9464n })), throws('ERR_INVALID_ARG_TYPE')],
  [
    'port in use',
    () => serveMetrics(local({ port: takenPort, host: '127.0.0.1' })),
    { rejects: 'EADDRINUSE', type: Error },
  ],
  ["port '0'", () => serveMetrics(local({ port: '0' })), served],
  ['host a number', serve(local({ host: 1 })), throws('ERR_INVALID_ARG_TYPE')],
  ['host empty', serve(local({ host: '' })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host a name', serve(local({ host: 'metrics.example' })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host of 300 characters', serve(local({ host: LONG_NAME })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host with a NUL', serve(local({ host: '127.0.0.1\0' })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host with an unknown scope', serve(local({ host: 'fe80::1%nosuch0' })), throws('ERR_INVALID_IP_ADDRESS')],
  ["host 'localhost'", () => serveMetrics(local({ host: 'localhost' })), served],
  ['host IPv4-mapped', () => serveMetrics(local({ host: '::ffff:127.0.0.1' })), served],
  ['path a number', serve(local({ path: 5 })), throws('ERR_INVALID_ARG_TYPE')],
  ['path without a slash', serve(local({ path: 'metrics' })), throws('ERR_INVALID_ARG_VALUE')],
  ['path empty', serve(local({ path: '' })), throws('ERR_INVALID_ARG_VALUE')],
  ['registry a plain object', serve(local({ registry: {} })), throws('ERR_INVALID_ARG_VALUE')],
  ['registry null', serve(local({ registry: null })), served],
  ['a throwing getter', serve(throwingGetter('port')), throws('E_GETTER', Error)],
  ['a throwing Proxy', serve(throwingProxy()), throws('E_PROXY', Error)],
  ['a frozen null-prototype object', () => serveMetrics(Object.freeze(nullProto(local({})))), served],
]);

corpus(cases, () => porter);
