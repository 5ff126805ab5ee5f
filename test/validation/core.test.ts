// The bad-input corpus of @porter/core: every public function and method, with wrong
// types, NaN, infinities, huge numbers, out-of-range ports, inverted ranges, empty and
// NUL strings, scopes, IPv4-mapped addresses, 300-character names, throwing getters,
// Proxies, Symbols, BigInts, null-prototype and frozen objects, duck-typed signals and
// double releases (see test/helpers/corpus.ts for what each case asserts).
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import {
  Agent,
  allocate,
  type ConnectOptions,
  configureDefault,
  connect,
  createConnection,
  defaultPorter,
  hostPorts,
  type Lease,
  leaseOf,
  Porter,
  type PorterOptions,
  partitionRange,
} from '@porter/core';
import test from 'ava';
import {
  agentRows,
  bad,
  type Case,
  corpus,
  duckSignal,
  type Expect,
  forwardingProxy,
  LONG_NAME,
  localhostV4,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../helpers/corpus.js';
import { findFreePortBlock } from '../helpers/ports.js';

let porter: Porter;
let server: Server;
let port = 0;

test.before(async () => {
  const [first, last] = await findFreePortBlock(64);
  porter = new Porter({ portRange: [first, last], agingMs: 0, kernelFallback: false });
  server = createServer((s) => s.on('error', () => {}).resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
test.after.always(() => {
  server?.close();
});

const accepts = (check: (value: unknown) => boolean | undefined = () => true): Expect => ({ accepts: check });
/** A connect that succeeds: its socket is closed, so that nothing stays in use. */
const connected: Expect = {
  accepts: async (value) => {
    const socket = value as Socket;
    const ok = socket.remotePort === port;
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    return ok;
  },
};
const NaN_ = Number.NaN;
const INF = Number.POSITIVE_INFINITY;
/** A scope by index that no interface has (indexes are counted up from 1 as interfaces come). */
const NO_INDEX = 'fe80::1%2147483647';

const cases: Case[] = [];
/** `f` on a Porter that was closed. */
const closedPorter = (f: (p: Porter) => unknown) => () => {
  const p = new Porter({ portRange: [40_000, 40_001] });
  p.close();
  return f(p);
};
const add = (fn: string, rows: [string, () => unknown, Expect][]): void => {
  for (const [input, call, expect] of rows) cases.push({ fn, input, call, expect });
};

// --- new Porter(options) ---------------------------------------------------------------
const make = (options: unknown) => () => new Porter(bad<PorterOptions>(options));
add('new Porter', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    make(v),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['portRange a string', make({ portRange: 'all' }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange of one element', make({ portRange: [1024] }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange of three elements', make({ portRange: [1024, 2000, 3000] }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange with an object', make({ portRange: [{}, 2000] }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange with BigInts', make({ portRange: [1024n, 2000n] }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange with a Symbol', make({ portRange: [Symbol('p'), 2000] }), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange from 0', make({ portRange: [0, 2000] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange to 65536', make({ portRange: [1024, 65536] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange from -1', make({ portRange: [-1, 2000] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange with a fraction', make({ portRange: [1024.5, 2000] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange with NaN', make({ portRange: [NaN_, 2000] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange to Infinity', make({ portRange: [1024, INF] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange from -Infinity', make({ portRange: [-INF, 2000] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange of 2^53', make({ portRange: [2 ** 53, 2 ** 53 + 2] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange of empty strings', make({ portRange: ['', ''] }), throws('ERR_SOCKET_BAD_PORT')],
  ['portRange inverted', make({ portRange: [2000, 1024] }), throws('ERR_INVALID_ARG_VALUE')],
  [
    'portRange of numeric strings',
    make({ portRange: ['40000', '40009'] }),
    accepts((p) => (p as Porter).options.portRange[1] === 40009),
  ],
  [
    "portRange 'system'",
    make({ portRange: 'system' }),
    accepts((p) => (p as Porter).options.portRange[0] === hostPorts().ephemeral[0]),
  ],
  ['agingMs a string', make({ agingMs: '100' }), throws('ERR_INVALID_ARG_TYPE')],
  ['agingMs a BigInt', make({ agingMs: 100n }), throws('ERR_INVALID_ARG_TYPE')],
  ['agingMs -1', make({ agingMs: -1 }), throws('ERR_OUT_OF_RANGE')],
  ['agingMs NaN', make({ agingMs: NaN_ }), throws('ERR_OUT_OF_RANGE')],
  ['agingMs Infinity', make({ agingMs: INF }), throws('ERR_OUT_OF_RANGE')],
  ['agingMs beyond 2^31-1', make({ agingMs: 2 ** 31 }), throws('ERR_OUT_OF_RANGE')],
  ['agingMs a fraction', make({ agingMs: 0.5 }), accepts((p) => (p as Porter).options.agingMs === 0.5)],
  ['mode unknown', make({ mode: 'fast' }), throws('ERR_INVALID_ARG_VALUE')],
  ['mode empty', make({ mode: '' }), throws('ERR_INVALID_ARG_VALUE')],
  ['mode a number', make({ mode: 1 }), throws('ERR_INVALID_ARG_VALUE')],
  ['mode in capitals', make({ mode: 'POOL' }), throws('ERR_INVALID_ARG_VALUE')],
  ['servicePorts unknown', make({ servicePorts: 'skip' }), throws('ERR_INVALID_ARG_VALUE')],
  ['servicePorts empty', make({ servicePorts: '' }), throws('ERR_INVALID_ARG_VALUE')],
  ['servicePorts true', make({ servicePorts: true }), throws('ERR_INVALID_ARG_VALUE')],
  ['servicePorts in capitals', make({ servicePorts: 'USE' }), throws('ERR_INVALID_ARG_VALUE')],
  [
    "servicePorts 'use'",
    make({ servicePorts: 'use' }),
    accepts((p) => (p as Porter).options.servicePorts === 'use' && (p as Porter).capacity().servicePorts === 0),
  ],
  ['retry a number', make({ retry: 3 }), throws('ERR_INVALID_ARG_TYPE')],
  ['retry null', make({ retry: null }), throws('ERR_INVALID_ARG_TYPE')],
  ['retry.attempts a string', make({ retry: { attempts: '1' } }), throws('ERR_INVALID_ARG_TYPE')],
  ['retry.attempts -1', make({ retry: { attempts: -1 } }), throws('ERR_OUT_OF_RANGE')],
  ['retry.attempts 1.5', make({ retry: { attempts: 1.5 } }), throws('ERR_OUT_OF_RANGE')],
  ['retry.attempts NaN', make({ retry: { attempts: NaN_ } }), throws('ERR_OUT_OF_RANGE')],
  ['retry.attempts 2^32', make({ retry: { attempts: 2 ** 32 } }), throws('ERR_OUT_OF_RANGE')],
  ['kernelFallback a string', make({ kernelFallback: 'yes' }), throws('ERR_INVALID_ARG_TYPE')],
  ['kernelFallback 1', make({ kernelFallback: 1 }), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddresses a string', make({ localAddresses: '127.0.0.2' }), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddresses with a name', make({ localAddresses: ['localhost'] }), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddresses with a number', make({ localAddresses: [127] }), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddresses with an empty string', make({ localAddresses: [''] }), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddresses with a NUL', make({ localAddresses: ['127.0.0.1\0'] }), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddresses with a port', make({ localAddresses: ['127.0.0.1:80'] }), throws('ERR_INVALID_IP_ADDRESS')],
  [
    'localAddresses with an unknown scope',
    make({ localAddresses: ['fe80::1%nosuch0'] }),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  ['localAddresses with a scope on IPv4', make({ localAddresses: ['127.0.0.1%lo'] }), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddresses IPv4-mapped', make({ localAddresses: ['::ffff:127.0.0.1'] }), accepts()],
  ['a throwing getter', make(throwingGetter('agingMs')), throws('E_GETTER', Error)],
  ['a throwing Proxy', make(throwingProxy()), throws('E_PROXY', Error)],
  ['a forwarding Proxy', make(forwardingProxy({ agingMs: 5 })), accepts((p) => (p as Porter).options.agingMs === 5)],
  ['a null-prototype object', make(nullProto({ agingMs: 7 })), accepts((p) => (p as Porter).options.agingMs === 7)],
  ['a frozen object', make(Object.freeze({ agingMs: 9, retry: Object.freeze({ attempts: 1 }) })), accepts()],
]);

// --- porter.connect(options) (and the module-level connect) ------------------------------
const conn = (options: () => unknown) => () => porter.connect(bad<ConnectOptions>(options()));
const to = (extra: object) => () => ({ host: '127.0.0.1', port, ...extra });
const lookupFails: ConnectOptions['lookup'] = (_host, _options, callback) =>
  process.nextTick(() => callback(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), '', 4));
add('porter.connect', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    conn(() => v),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['options undefined', conn(() => undefined), throws('ERR_INVALID_ARG_TYPE')],
  ['port missing', conn(() => ({ host: '127.0.0.1' })), throws('ERR_MISSING_ARGS')],
  ['port 0', conn(to({ port: 0 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port 65536', conn(to({ port: 65536 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port -1', conn(to({ port: -1 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port NaN', conn(to({ port: NaN_ })), throws('ERR_SOCKET_BAD_PORT')],
  ['port Infinity', conn(to({ port: INF })), throws('ERR_SOCKET_BAD_PORT')],
  ['port 2^53', conn(to({ port: 2 ** 53 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port a fraction', conn(to({ port: 80.5 })), throws('ERR_SOCKET_BAD_PORT')],
  ['port a word', conn(to({ port: 'http' })), throws('ERR_SOCKET_BAD_PORT')],
  ['port an empty string', conn(to({ port: '' })), throws('ERR_SOCKET_BAD_PORT')],
  ['port a BigInt', conn(to({ port: 80n })), throws('ERR_INVALID_ARG_TYPE')],
  ['port a Symbol', conn(to({ port: Symbol('p') })), throws('ERR_INVALID_ARG_TYPE')],
  ['port an object', conn(to({ port: {} })), throws('ERR_INVALID_ARG_TYPE')],
  ['port a numeric string', conn(() => ({ host: '127.0.0.1', port: String(port) })), connected],
  ['host a number', conn(to({ host: 127 })), throws('ERR_INVALID_ARG_TYPE')],
  ['host empty: localhost, as in net', conn(to({ host: '', lookup: localhostV4 })), connected],
  ['host null: localhost, as in net', conn(to({ host: null, lookup: localhostV4 })), connected],
  ['host with a NUL', conn(to({ host: 'localhost\0.example' })), throws('ERR_INVALID_ARG_VALUE')],
  ['host with an unknown scope', conn(to({ host: 'fe80::1%nosuch0' })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host with an unknown scope index', conn(to({ host: NO_INDEX })), throws('ERR_INVALID_IP_ADDRESS')],
  ['host of 300 characters', conn(to({ host: LONG_NAME })), { rejects: /^E[A-Z_]+$/ }],
  [
    'host of 300 characters, custom lookup',
    conn(to({ host: LONG_NAME, lookup: lookupFails })),
    { rejects: 'ENOTFOUND' },
  ],
  ['host IPv4-mapped', conn(to({ host: '::ffff:127.0.0.1' })), connected],
  ['localAddress a name', conn(to({ localAddress: 'localhost' })), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddress a number', conn(to({ localAddress: 1 })), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddress of the other family', conn(to({ localAddress: '::1' })), throws('ERR_INVALID_ARG_VALUE')],
  [
    'localAddress with an unknown scope',
    conn(to({ localAddress: 'fe80::1%nosuch0' })),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  [
    'localAddress with an unknown scope index',
    conn(to({ host: '::1', localAddress: NO_INDEX })),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  ['localPort given', conn(to({ localPort: 40_000 })), throws('ERR_INVALID_ARG_VALUE')],
  ['family 5', conn(to({ family: 5 })), throws('ERR_INVALID_ARG_VALUE')],
  ['family a word', conn(to({ family: 'inet' })), throws('ERR_INVALID_ARG_VALUE')],
  ['family NaN', conn(to({ family: NaN_ })), throws('ERR_INVALID_ARG_VALUE')],
  ['lookup a string', conn(to({ host: 'localhost', lookup: 'dns' })), throws('ERR_INVALID_ARG_TYPE')],
  ['hints a string', conn(to({ hints: 'x' })), throws('ERR_INVALID_ARG_TYPE')],
  ['hints -1', conn(to({ hints: -1 })), throws('ERR_OUT_OF_RANGE')],
  ['hints 1.5', conn(to({ hints: 1.5 })), throws('ERR_OUT_OF_RANGE')],
  ['timeout a string', conn(to({ timeout: '100' })), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout -1', conn(to({ timeout: -1 })), throws('ERR_OUT_OF_RANGE')],
  ['timeout NaN', conn(to({ timeout: NaN_ })), throws('ERR_OUT_OF_RANGE')],
  ['timeout a BigInt', conn(to({ timeout: 100n })), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout 2^53', conn(to({ timeout: 2 ** 53 })), throws('ERR_OUT_OF_RANGE')],
  ['timeout beyond 2^31-1', conn(to({ timeout: 2 ** 40 })), connected],
  ['signal a duck-typed object', conn(to({ signal: duckSignal() })), throws('ERR_INVALID_ARG_TYPE')],
  [
    'signal a duck-typed object, by name',
    conn(to({ host: 'localhost', signal: duckSignal() })),
    throws('ERR_INVALID_ARG_TYPE'),
  ],
  ['signal a string', conn(to({ signal: 'abort' })), throws('ERR_INVALID_ARG_TYPE')],
  ['signal null: none, as in net', conn(to({ signal: null })), connected],
  ['localAddress empty: none, as in net', conn(to({ localAddress: '' })), connected],
  ['path given', conn(to({ path: '/tmp/porter.sock' })), throws('ERR_INVALID_ARG_VALUE')],
  ['fd given', conn(to({ fd: 3 })), throws('ERR_INVALID_ARG_VALUE')],
  ['localPort 0 (any port)', conn(to({ localPort: 0 })), connected],
  ['socketOptions null', conn(to({ socketOptions: null })), throws('ERR_INVALID_ARG_TYPE')],
  ['signal already aborted', conn(to({ signal: AbortSignal.abort() })), { rejects: 'ABORT_ERR', type: Error }],
  ['noDelay a string', conn(to({ noDelay: 'yes' })), throws('ERR_INVALID_ARG_TYPE')],
  ['keepAlive 1', conn(to({ keepAlive: 1 })), throws('ERR_INVALID_ARG_TYPE')],
  ['allowHalfOpen a string', conn(to({ allowHalfOpen: 'no' })), throws('ERR_INVALID_ARG_TYPE')],
  ['keepAliveInitialDelay -5', conn(to({ keepAliveInitialDelay: -5 })), throws('ERR_OUT_OF_RANGE')],
  ['a throwing getter', conn(() => throwingGetter('host')), throws('E_GETTER', Error)],
  ['a throwing Proxy', conn(() => throwingProxy()), throws('E_PROXY', Error)],
  ['a forwarding Proxy', conn(() => forwardingProxy({ host: '127.0.0.1', port })), connected],
  ['a null-prototype object', conn(() => nullProto({ host: '127.0.0.1', port })), connected],
  ['a frozen object', conn(() => Object.freeze({ host: '127.0.0.1', port })), connected],
]);
add('connect', [
  ['options null', () => connect(bad(null)), throws('ERR_INVALID_ARG_TYPE')],
  ['port 0', () => connect(bad({ host: '127.0.0.1', port: 0 })), throws('ERR_SOCKET_BAD_PORT')],
  [
    'signal a duck-typed object',
    () => connect(bad({ host: '127.0.0.1', port, signal: duckSignal() })),
    throws('ERR_INVALID_ARG_TYPE'),
  ],
]);

// --- createConnection(...) (net.createConnection's contract) and the http Agent ------------
/** porter.createConnection with the arguments `args()` gives when the case runs. */
const create = (args: () => unknown[]) => () => (porter.createConnection as (...a: unknown[]) => Socket)(...args());
const createTo = (extra: object) => create(() => [{ host: '127.0.0.1', port, ...extra }]);
/** A socket createConnection returned, once connected: closed, and its close awaited. */
const connecting: Expect = {
  accepts: async (value) => {
    const socket = value as Socket;
    if (socket.connecting) await once(socket, 'connect');
    return (await connected.accepts(socket)) !== false;
  },
};
add('porter.createConnection', [
  ['no arguments', create(() => []), throws('ERR_MISSING_ARGS')],
  ['options undefined', create(() => [undefined]), throws('ERR_MISSING_ARGS')],
  ['options null', create(() => [null]), throws('ERR_INVALID_ARG_TYPE')],
  ['options empty', create(() => [{}]), throws('ERR_MISSING_ARGS')],
  ['options a Symbol', create(() => [Symbol('o')]), throws('ERR_INVALID_ARG_TYPE')],
  ['a path (a Unix socket)', create(() => ['/tmp/porter.sock']), throws('ERR_INVALID_ARG_VALUE')],
  ['path given', create(() => [{ path: '/tmp/porter.sock' }]), throws('ERR_INVALID_ARG_VALUE')],
  ['fd given', create(() => [{ fd: 3 }]), throws('ERR_INVALID_ARG_VALUE')],
  ['port 0', createTo({ port: 0 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port 65536', createTo({ port: 65536 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port a BigInt', createTo({ port: 80n }), throws('ERR_INVALID_ARG_TYPE')],
  ['localPort given', createTo({ localPort: 40_000 }), throws('ERR_INVALID_ARG_VALUE')],
  ['host a number', createTo({ host: 5 }), throws('ERR_INVALID_ARG_TYPE')],
  ['host with a NUL', createTo({ host: 'localhost\0.example' }), throws('ERR_INVALID_ARG_VALUE')],
  ['host with an unknown scope', createTo({ host: 'fe80::1%nosuch0' }), throws('ERR_INVALID_IP_ADDRESS')],
  ['host with an unknown scope index', createTo({ host: NO_INDEX }), throws('ERR_INVALID_IP_ADDRESS')],
  ['localAddress a name', createTo({ localAddress: 'localhost' }), throws('ERR_INVALID_IP_ADDRESS')],
  [
    'localAddress with an unknown scope index',
    createTo({ host: '::1', localAddress: NO_INDEX }),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  ['localAddress of the other family', createTo({ localAddress: '::1' }), throws('ERR_INVALID_ARG_VALUE')],
  ['family 5', createTo({ family: 5 }), throws('ERR_INVALID_ARG_VALUE')],
  ['lookup a string', createTo({ lookup: 'dns' }), throws('ERR_INVALID_ARG_TYPE')],
  ['hints a string', createTo({ hints: 'x' }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout -1', createTo({ timeout: -1 }), throws('ERR_OUT_OF_RANGE')],
  ['timeout 2^53', createTo({ timeout: 2 ** 53 }), throws('ERR_OUT_OF_RANGE')],
  ['timeout beyond 2^31-1', createTo({ timeout: 3e9 }), connecting],
  ['autoSelectFamily 1', createTo({ autoSelectFamily: 1 }), throws('ERR_INVALID_ARG_TYPE')],
  ['autoSelectFamilyAttemptTimeout 0', createTo({ autoSelectFamilyAttemptTimeout: 0 }), throws('ERR_OUT_OF_RANGE')],
  ['noDelay a string', createTo({ noDelay: 'yes' }), throws('ERR_INVALID_ARG_TYPE')],
  ['highWaterMark -1', createTo({ highWaterMark: -1 }), throws('ERR_INVALID_ARG_VALUE')],
  ['a throwing getter', create(() => [throwingGetter('port')]), throws('E_GETTER', Error)],
  ['a throwing Proxy', create(() => [throwingProxy()]), throws('E_PROXY', Error)],
  ['socketOptions null', createTo({ socketOptions: null }), throws('ERR_INVALID_ARG_TYPE')],
  ['host empty: localhost, as in net', createTo({ host: '', lookup: localhostV4 }), connecting],
  ['localPort 0 (any port)', createTo({ localPort: 0 }), connecting],
  ['(port, host)', create(() => [port, '127.0.0.1']), connecting],
  ['port a numeric string', create(() => [String(port), '127.0.0.1']), connecting],
  ['a frozen null-prototype object', create(() => [Object.freeze(nullProto({ host: '127.0.0.1', port }))]), connecting],
  [
    'host of 300 characters: an error event',
    create(() => [{ host: LONG_NAME, port }]),
    {
      accepts: async (value) => {
        const [err] = (await once(value as Socket, 'error')) as [NodeJS.ErrnoException];
        return /^E[A-Z_]+$/.test(err.code ?? '');
      },
    },
  ],
]);
add('createConnection', [
  ['port 0', () => createConnection(bad({ host: '127.0.0.1', port: 0 })), throws('ERR_SOCKET_BAD_PORT')],
  ['options null', () => createConnection(bad(null)), throws('ERR_INVALID_ARG_TYPE')],
]);
add('a closed Porter', [
  [
    'createConnection',
    closedPorter((p) => p.createConnection({ host: '127.0.0.1', port })),
    throws('ERR_PORTER_CLOSED'),
  ],
]);
add(
  'new Agent',
  agentRows(Agent, () => porter),
);

// --- porter.allocate(options) (and the module-level allocate) ----------------------------
const alloc = (options: unknown) => () => porter.allocate(bad(options));
const released: Expect = {
  accepts: (lease) => {
    const ok = (lease as Lease).release({ aging: false });
    return ok;
  },
};
add('porter.allocate', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    alloc(v),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['address missing', alloc({ port: 80 }), throws('ERR_INVALID_ARG_TYPE')],
  ['address a name', alloc({ address: 'localhost', port: 80 }), throws('ERR_INVALID_IP_ADDRESS')],
  ['address a number', alloc({ address: 0x7f000001, port: 80 }), throws('ERR_INVALID_ARG_TYPE')],
  ['address empty', alloc({ address: '', port: 80 }), throws('ERR_INVALID_IP_ADDRESS')],
  ['address with a NUL', alloc({ address: '127.0.0.1\0', port: 80 }), throws('ERR_INVALID_IP_ADDRESS')],
  ['address with an unknown scope', alloc({ address: 'fe80::1%nosuch0', port: 80 }), throws('ERR_INVALID_IP_ADDRESS')],
  ['address of 300 characters', alloc({ address: LONG_NAME, port: 80 }), throws('ERR_INVALID_IP_ADDRESS')],
  ['address IPv4-mapped', alloc({ address: '::ffff:127.0.0.1', port: 80 }), released],
  ['address with a scope the kernel ignores', alloc({ address: '::1%lo', port: 80 }), released],
  ['port missing', alloc({ address: '127.0.0.1' }), throws('ERR_INVALID_ARG_TYPE')],
  ['port 0', alloc({ address: '127.0.0.1', port: 0 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port 65536', alloc({ address: '127.0.0.1', port: 65536 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port NaN', alloc({ address: '127.0.0.1', port: NaN_ }), throws('ERR_SOCKET_BAD_PORT')],
  ['port -Infinity', alloc({ address: '127.0.0.1', port: -INF }), throws('ERR_SOCKET_BAD_PORT')],
  ['port a fraction', alloc({ address: '127.0.0.1', port: 1.5 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port a BigInt', alloc({ address: '127.0.0.1', port: 80n }), throws('ERR_INVALID_ARG_TYPE')],
  ['port a numeric string', alloc({ address: '127.0.0.1', port: '80' }), released],
  [
    'localAddress not an IP',
    alloc({ address: '127.0.0.1', port: 80, localAddress: 'eth0' }),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  [
    'localAddress of the other family',
    alloc({ address: '127.0.0.1', port: 80, localAddress: '::1' }),
    throws('ERR_INVALID_ARG_VALUE'),
  ],
  [
    'localAddress a Symbol',
    alloc({ address: '127.0.0.1', port: 80, localAddress: Symbol('l') }),
    throws('ERR_INVALID_ARG_TYPE'),
  ],
  ['a throwing getter', alloc(throwingGetter('address')), throws('E_GETTER', Error)],
  ['a throwing Proxy', alloc(throwingProxy()), throws('E_PROXY', Error)],
  ['a null-prototype object', alloc(nullProto({ address: '127.0.0.1', port: 80 })), released],
  ['a frozen object', alloc(Object.freeze({ address: '127.0.0.1', port: 80 })), released],
]);
add('allocate', [
  ['options undefined', () => allocate(bad(undefined)), throws('ERR_INVALID_ARG_TYPE')],
  ['port 65536', () => allocate(bad({ address: '127.0.0.1', port: 65536 })), throws('ERR_SOCKET_BAD_PORT')],
]);

// --- leases ------------------------------------------------------------------------------
/** `f` on a fresh lease, which must still be held after it (a bad call releases nothing). */
const withLease = (f: (lease: Lease) => unknown) => () => {
  const lease = porter.allocate({ address: '127.0.0.1', port: 9 });
  let result: unknown;
  let thrown: unknown;
  try {
    result = f(lease);
  } catch (e) {
    thrown = e;
  }
  // Whatever the call did, the lease must still be held (the error then is this one).
  if (!lease.release({ aging: false })) throw new Error('the call released the lease');
  if (thrown !== undefined) throw thrown;
  return result;
};
add('lease.release', [
  ...NOT_OBJECTS.filter(([what]) => what !== 'a function').map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    withLease((l) => l.release(bad(v))),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['aging a string', withLease((l) => l.release(bad({ aging: 'no' }))), throws('ERR_INVALID_ARG_TYPE')],
  ['aging 0', withLease((l) => l.release(bad({ aging: 0 }))), throws('ERR_INVALID_ARG_TYPE')],
  ['a throwing getter', withLease((l) => l.release(bad(throwingGetter('aging')))), throws('E_GETTER', Error)],
  ['called on another object', withLease((l) => l.release.call({})), throws('ERR_INVALID_THIS')],
  ['called on null', withLease((l) => l.release.call(null)), throws('ERR_INVALID_THIS')],
  [
    'twice',
    () => {
      const lease = porter.allocate({ address: '127.0.0.1', port: 9 });
      return [lease.release({ aging: false }), lease.release({ aging: false }), lease.release()];
    },
    accepts((r) => JSON.stringify(r) === '[true,false,false]'),
  ],
  [
    'isAging on another object',
    withLease((l) => bad<{ isAging(): boolean }>(l).isAging.call({})),
    throws('ERR_INVALID_THIS'),
  ],
  [
    'toJSON on a Proxy of a lease',
    withLease((l) => bad<{ toJSON(): object }>(l).toJSON.call(new Proxy(l, {}))),
    throws('ERR_INVALID_THIS'),
  ],
]);
add('leaseOf', [
  ['undefined', () => leaseOf(bad(undefined)), accepts((v) => v === undefined)],
  ['a number', () => leaseOf(bad(5)), accepts((v) => v === undefined)],
  ['a plain object', () => leaseOf(bad({})), accepts((v) => v === undefined)],
  ['null', () => leaseOf(bad(null)), accepts((v) => v === undefined)],
  ['a Symbol', () => leaseOf(bad(Symbol('s'))), accepts((v) => v === undefined)],
  ["a Proxy that throws: the Proxy's error", () => leaseOf(bad(throwingProxy())), throws('E_PROXY', Error)],
]);

// --- inspection, methods on other objects, a closed Porter -------------------------------
const summary = (busiest: unknown) => () => porter.poolSummary(bad(busiest));
add('porter.poolSummary', [
  ['busiest missing', summary(undefined), throws('ERR_INVALID_ARG_TYPE')],
  ['busiest a string', summary('10'), throws('ERR_INVALID_ARG_TYPE')],
  ['busiest -1', summary(-1), throws('ERR_OUT_OF_RANGE')],
  ['busiest 1.5', summary(1.5), throws('ERR_OUT_OF_RANGE')],
  ['busiest NaN', summary(NaN_), throws('ERR_OUT_OF_RANGE')],
  ['busiest Infinity', summary(INF), throws('ERR_OUT_OF_RANGE')],
  ['busiest 2^32', summary(2 ** 32), throws('ERR_OUT_OF_RANGE')],
  ['busiest a BigInt', summary(3n), throws('ERR_INVALID_ARG_TYPE')],
]);
// Every method and getter of the prototype, so that one added later is held to it too.
for (const key of Reflect.ownKeys(Porter.prototype)) {
  if (key === 'constructor') continue;
  const d = Object.getOwnPropertyDescriptor(Porter.prototype, key) as PropertyDescriptor;
  const fn = (d.get ?? d.value) as (...args: unknown[]) => unknown;
  add(`porter.${String(key)}${d.get ? ' (getter)' : ''}`, [
    ['called on null', () => fn.call(null, {}), throws('ERR_INVALID_THIS')],
    ['called on a plain object', () => fn.call({}, {}), throws('ERR_INVALID_THIS')],
  ]);
}
add('porter.sharesRegistryWith', [
  ['another object', () => porter.sharesRegistryWith(bad({})), throws('ERR_INVALID_ARG_TYPE')],
  ['undefined', () => porter.sharesRegistryWith(bad(undefined)), throws('ERR_INVALID_ARG_TYPE')],
  ['the default Porter', () => porter.sharesRegistryWith(defaultPorter()), accepts((v) => v === false)],
]);
add('a closed Porter', [
  ['connect', closedPorter((p) => p.connect({ host: '127.0.0.1', port })), throws('ERR_PORTER_CLOSED')],
  ['allocate', closedPorter((p) => p.allocate({ address: '127.0.0.1', port })), throws('ERR_PORTER_CLOSED')],
  ['closed', closedPorter((p) => p.closed), accepts((v) => v === true)],
  ['close again', closedPorter((p) => p.close()), accepts()],
  ['snapshot', closedPorter((p) => p.snapshot()), accepts((v) => Array.isArray(v))],
]);

// --- hostPorts, partitionRange, configureDefault ------------------------------------------
const part = (range: unknown, index: unknown, count: unknown) => () =>
  partitionRange(bad(range), bad(index), bad(count));
add('partitionRange', [
  ['range a string', part('1024-2047', 0, 2), throws('ERR_INVALID_ARG_TYPE')],
  ['range null', part(null, 0, 2), throws('ERR_INVALID_ARG_TYPE')],
  ['range of one element', part([1024], 0, 2), throws('ERR_INVALID_ARG_TYPE')],
  ['range inverted', part([2047, 1024], 0, 2), throws('ERR_INVALID_ARG_VALUE')],
  ['range from 0', part([0, 2047], 0, 2), throws('ERR_SOCKET_BAD_PORT')],
  ['range to 65536', part([1024, 65536], 0, 2), throws('ERR_SOCKET_BAD_PORT')],
  ['index NaN', part([1024, 2047], NaN_, 2), throws('ERR_OUT_OF_RANGE')],
  ['index 1.5', part([1024, 2047], 1.5, 2), throws('ERR_OUT_OF_RANGE')],
  ['index -1', part([1024, 2047], -1, 2), throws('ERR_OUT_OF_RANGE')],
  ['index = count', part([1024, 2047], 2, 2), throws('ERR_OUT_OF_RANGE')],
  ['index 2^32+2', part([1024, 2047], 2 ** 32 + 2, 2), throws('ERR_OUT_OF_RANGE')],
  ['index null', part([1024, 2047], null, 2), throws('ERR_INVALID_ARG_TYPE')],
  ['index a string', part([1024, 2047], '0', 2), throws('ERR_INVALID_ARG_TYPE')],
  ['index a BigInt', part([1024, 2047], 0n, 2), throws('ERR_INVALID_ARG_TYPE')],
  ['count 0', part([1024, 2047], 0, 0), throws('ERR_OUT_OF_RANGE')],
  ['count Infinity', part([1024, 2047], 0, INF), throws('ERR_OUT_OF_RANGE')],
  ['count above the range size', part([1024, 1025], 0, 3), throws('ERR_OUT_OF_RANGE')],
  ['count 2^32+2', part([1024, 2047], 0, 2 ** 32 + 2), throws('ERR_OUT_OF_RANGE')],
  ['the last of 3', part([1024, 2047], 2, 3), accepts((r) => JSON.stringify(r) === '[1706,2047]')],
]);
add('hostPorts', [
  [
    'with a stray argument',
    () => (hostPorts as (x: unknown) => unknown)(5),
    accepts((h) => Array.isArray((h as { ephemeral: unknown }).ephemeral)),
  ],
]);
add('configureDefault', [
  ['options null', () => configureDefault(bad(null)), throws('ERR_INVALID_ARG_TYPE')],
  ['portRange inverted', () => configureDefault(bad({ portRange: [2000, 1024] })), throws('ERR_INVALID_ARG_VALUE')],
  ['agingMs NaN', () => configureDefault(bad({ agingMs: NaN_ })), throws('ERR_OUT_OF_RANGE')],
  ['servicePorts unknown', () => configureDefault(bad({ servicePorts: 'never' })), throws('ERR_INVALID_ARG_VALUE')],
  [
    'localAddresses with an unknown scope',
    () => configureDefault(bad({ localAddresses: ['fe80::1%nosuch0'] })),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
]);

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
