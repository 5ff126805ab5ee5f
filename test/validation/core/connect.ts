/** The corpus of @porter/core, its connects: porter.connect, connect, createConnection and the http Agent. */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Agent, type ConnectOptions, connect, createConnection } from '@porter/core';
import {
  agentRows,
  bad,
  caseList,
  duckSignal,
  type Expect,
  forwardingProxy,
  LONG_NAME,
  localhostV4,
  NO_INDEX,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../../helpers/corpus.js';
import { closedPorter, connected, INF, NaN_, port, porter } from './target.js';

const { cases, add } = caseList();

export { cases as connectCases };

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
