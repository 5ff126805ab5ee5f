// The bad-input corpus of @porter/tls: connect, createConnection, Agent and connector
// (see test/helpers/corpus.ts for what each case asserts).
import { once } from 'node:events';
import { type Server, type TLSSocket, createServer as tlsServer } from 'node:tls';
import { Porter } from '@porter/core';
import { Agent, type ConnectOptions, type ConnectorRequest, connect, connector, createConnection } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import {
  agentRows,
  bad,
  type Case,
  corpus,
  duckSignal,
  type Expect,
  LONG_NAME,
  localhostV4,
  NO_INDEX,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../helpers/corpus.js';

const porter = new Porter({ portRange: [40_020, 40_039], agingMs: 0, kernelFallback: false });
const certs: Certs = makeCerts();
let server: Server;
let port = 0;

test.before(async () => {
  server = tlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => s.on('error', () => {}).resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
test.after.always(() => {
  server?.close();
  certs?.cleanup();
});

/** A TLS connection that was made: closed, and its close awaited, so that nothing stays in use. */
const secured: Expect = {
  accepts: async (value) => {
    const socket = value as TLSSocket;
    if (!socket.encrypted) return false;
    if (socket.pending) await once(socket, 'secureConnect');
    const ok = socket.authorized;
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    return ok;
  },
};

const cases: Case[] = [];
const add = (fn: string, rows: [string, () => unknown, Expect][]): void => {
  for (const [input, call, expect] of rows) cases.push({ fn, input, call, expect });
};

// --- connect(options) ---------------------------------------------------------------------
const good = () => ({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost', porter });
const conn = (extra: () => object) => () => connect(bad<ConnectOptions>({ ...good(), ...extra() }));
const with_ = (extra: object) => conn(() => extra);
add('connect', [
  ...NOT_OBJECTS.map(([what, v]): [string, () => unknown, Expect] => [
    `options ${what}`,
    () => connect(bad(v)),
    throws('ERR_INVALID_ARG_TYPE'),
  ]),
  ['options undefined', () => connect(bad(undefined)), throws('ERR_INVALID_ARG_TYPE')],
  ['porter a plain object', with_({ porter: {} }), throws('ERR_INVALID_ARG_TYPE')],
  ['porter a number', with_({ porter: 5 }), throws('ERR_INVALID_ARG_TYPE')],
  ['socket given', with_({ socket: {} }), throws('ERR_INVALID_ARG_VALUE')],
  ['localPort given', with_({ localPort: 40_000 }), throws('ERR_INVALID_ARG_VALUE')],
  ['path given', with_({ path: '/tmp/porter.sock' }), throws('ERR_INVALID_ARG_VALUE')],
  ['host a number', with_({ host: 1 }), throws('ERR_INVALID_ARG_TYPE')],
  ['host empty: localhost, as in tls.connect', with_({ host: '', lookup: localhostV4 }), secured],
  ['host with a NUL', with_({ host: 'localhost\0.example' }), throws('ERR_INVALID_ARG_VALUE')],
  ['host with an unknown scope', with_({ host: 'fe80::1%nosuch0' }), throws('ERR_INVALID_IP_ADDRESS')],
  ['host with an unknown scope index', with_({ host: NO_INDEX }), throws('ERR_INVALID_IP_ADDRESS')],
  [
    'localAddress with an unknown scope index',
    with_({ host: '::1', localAddress: NO_INDEX }),
    throws('ERR_INVALID_IP_ADDRESS'),
  ],
  ['host of 300 characters', with_({ host: LONG_NAME }), { rejects: /^E[A-Z_]+$/ }],
  ['port missing', with_({ port: undefined }), throws('ERR_MISSING_ARGS')],
  ['port 0', with_({ port: 0 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port 65536', with_({ port: 65536 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port NaN', with_({ port: Number.NaN }), throws('ERR_SOCKET_BAD_PORT')],
  ['port a BigInt', with_({ port: 443n }), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddress a name', with_({ localAddress: 'localhost' }), throws('ERR_INVALID_IP_ADDRESS')],
  ['servername a number', with_({ servername: 5 }), throws('ERR_INVALID_ARG_TYPE')],
  ['checkServerIdentity a string', with_({ checkServerIdentity: 'strict' }), throws('ERR_INVALID_ARG_TYPE')],
  ['rejectUnauthorized a string', with_({ rejectUnauthorized: 'false' }), throws('ERR_INVALID_ARG_TYPE')],
  ['secureContext a plain object', with_({ secureContext: {} }), throws('ERR_INVALID_ARG_TYPE')],
  ['session a string', with_({ session: 'abc' }), throws('ERR_INVALID_ARG_TYPE')],
  ['ALPNProtocols a number', with_({ ALPNProtocols: 5 }), throws('ERR_INVALID_ARG_TYPE')],
  ['ALPNProtocols with a number', with_({ ALPNProtocols: ['h2', 5] }), throws('ERR_INVALID_ARG_TYPE')],
  ['minDHSize -1', with_({ minDHSize: -1 }), throws('ERR_INVALID_ARG_VALUE')],
  ['ciphers that match none', with_({ ciphers: 'NO-SUCH-CIPHER' }), throws('ERR_SSL_NO_CIPHER_MATCH', Error)],
  ['minVersion TLSv9', with_({ minVersion: 'TLSv9' }), throws('ERR_TLS_INVALID_PROTOCOL_VERSION', TypeError)],
  ['a key that is no PEM', with_({ cert: 'x', key: 'y' }), { throws: 'ERR_OSSL_PEM_NO_START_LINE', type: Error }],
  ['a pfx that is no PKCS#12', with_({ pfx: Buffer.from('zz') }), throws('ERR_INVALID_ARG_VALUE')],
  ['timeout -1', with_({ timeout: -1 }), throws('ERR_OUT_OF_RANGE')],
  ['timeout a string', with_({ timeout: '5' }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout 2^53', with_({ timeout: 2 ** 53 }), throws('ERR_OUT_OF_RANGE')],
  ['signal a duck-typed object', with_({ signal: duckSignal() }), throws('ERR_INVALID_ARG_TYPE')],
  ['signal already aborted', with_({ signal: AbortSignal.abort() }), { rejects: 'ABORT_ERR', type: Error }],
  ['a throwing getter', () => connect(bad(throwingGetter('host'))), throws('E_GETTER', Error)],
  ['a throwing Proxy', () => connect(bad(throwingProxy())), throws('E_PROXY', Error)],
  ['a frozen object', () => connect(Object.freeze(good())), secured],
  ['a null-prototype object', () => connect(nullProto(good())), secured],
  ['timeout beyond 2^31-1', with_({ timeout: 2 ** 40 }), secured],
  ['host IPv4-mapped', with_({ host: '::ffff:127.0.0.1' }), secured],
]);

// --- createConnection(...) ----------------------------------------------------------------
/** createConnection with the arguments `args()` gives when the case runs. */
const create = (args: () => unknown[]) => () => (createConnection as (...a: unknown[]) => TLSSocket)(...args());
const over = (extra: object) => create(() => [{ ...good(), ...extra }]);
add('createConnection', [
  ['no arguments', create(() => []), throws('ERR_MISSING_ARGS')],
  ['options null', create(() => [null]), throws('ERR_INVALID_ARG_TYPE')],
  ['options a Symbol', create(() => [Symbol('o')]), throws('ERR_INVALID_ARG_TYPE')],
  ['options a BigInt', create(() => [443n]), throws('ERR_INVALID_ARG_TYPE')],
  ['port 0', over({ port: 0 }), throws('ERR_SOCKET_BAD_PORT')],
  ['port a word', create(() => ['https', '127.0.0.1']), throws('ERR_SOCKET_BAD_PORT')],
  ['porter a number', over({ porter: 5 }), throws('ERR_INVALID_ARG_TYPE')],
  ['socket given', over({ socket: {} }), throws('ERR_INVALID_ARG_VALUE')],
  ['host with a NUL', over({ host: 'a\0b' }), throws('ERR_INVALID_ARG_VALUE')],
  ['secureContext a plain object', over({ secureContext: {} }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout a string', over({ timeout: '5' }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout 2^53', over({ timeout: 2 ** 53 }), throws('ERR_OUT_OF_RANGE')],
  ['a throwing getter', create(() => [throwingGetter('port')]), throws('E_GETTER', Error)],
  ['a throwing Proxy', create(() => [throwingProxy()]), throws('E_PROXY', Error)],
  [
    '(port, host, options)',
    create(() => [port, '127.0.0.1', { ca: certs.ca, servername: 'localhost', porter }]),
    secured,
  ],
  ['a frozen object', create(() => [Object.freeze(good())]), secured],
  ['timeout beyond 2^31-1', over({ timeout: 3e9 }), secured],
]);

// --- new Agent(options) -------------------------------------------------------------------
add(
  'new Agent',
  agentRows(Agent, () => porter),
);

// --- connector(options) and the connector it returns ----------------------------------------
const make = (options: unknown) => () => connector(bad(options));
const built: Expect = { accepts: (f) => typeof f === 'function' };
const dial = (request: Partial<ConnectorRequest>) => () =>
  new Promise((resolve, reject) => {
    const connect = connector({ porter, ca: certs.ca });
    connect(bad({ protocol: 'https:', hostname: '127.0.0.1', port: String(port), ...request }), (err, socket) =>
      err ? reject(err) : resolve(socket),
    );
  });
/** The connector's function called with `value` as its request, as a promise of the socket. */
const request = (value: unknown) => () =>
  new Promise((resolve, reject) => {
    connector({ porter })(bad(value), (err, socket) => (err ? reject(err) : resolve(socket)));
  });
add('connector', [
  ['options null', make(null), throws('ERR_INVALID_ARG_TYPE')],
  ['options a number', make(5), throws('ERR_INVALID_ARG_TYPE')],
  ['porter a plain object', make({ porter: {} }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout -1', make({ timeout: -1 }), throws('ERR_OUT_OF_RANGE')],
  ['timeout 2^53', make({ timeout: 2 ** 53 }), throws('ERR_OUT_OF_RANGE')],
  ['timeout a string', make({ timeout: '10s' }), throws('ERR_INVALID_ARG_TYPE')],
  ['timeout 1.5', make({ timeout: 1.5 }), built],
  ['maxCachedSessions -1', make({ maxCachedSessions: -1 }), throws('ERR_OUT_OF_RANGE')],
  ['maxCachedSessions 1.5', make({ maxCachedSessions: 1.5 }), throws('ERR_OUT_OF_RANGE')],
  ['keepAliveInitialDelay NaN', make({ keepAliveInitialDelay: Number.NaN }), throws('ERR_OUT_OF_RANGE')],
  ['keepAlive a string', make({ keepAlive: 'yes' }), throws('ERR_INVALID_ARG_TYPE')],
  ['localAddress a name', make({ localAddress: 'localhost' }), throws('ERR_INVALID_IP_ADDRESS')],
  ['family 5', make({ family: 5 }), throws('ERR_INVALID_ARG_VALUE')],
  ['lookup a string', make({ lookup: 'dns' }), throws('ERR_INVALID_ARG_TYPE')],
  ['rejectUnauthorized a string', make({ rejectUnauthorized: 'no' }), throws('ERR_INVALID_ARG_TYPE')],
  ['socketPath given', make({ socketPath: '/tmp/porter.sock' }), throws('ERR_INVALID_ARG_VALUE')],
  ['localPort given', make({ localPort: 1 }), throws('ERR_INVALID_ARG_VALUE')],
  ['path given', make({ path: '/tmp/porter.sock' }), throws('ERR_INVALID_ARG_VALUE')],
  ['fd given', make({ fd: 3 }), throws('ERR_INVALID_ARG_VALUE')],
  ['socket given', make({ socket: {} }), throws('ERR_INVALID_ARG_VALUE')],
  ['a throwing Proxy', make(throwingProxy()), throws('E_PROXY', Error)],
  ['a request with a socketPath', dial({ socketPath: '/tmp/porter.sock' }), { rejects: 'ERR_INVALID_ARG_VALUE' }],
  ['a request with a NUL in its hostname', dial({ hostname: 'a\0b' }), { rejects: 'ERR_INVALID_ARG_VALUE' }],
  ['a request to an unknown scope', dial({ hostname: 'fe80::1%nosuch0' }), { rejects: 'ERR_INVALID_IP_ADDRESS' }],
  ['a request to an unknown scope index', dial({ hostname: NO_INDEX }), { rejects: 'ERR_INVALID_IP_ADDRESS' }],
  ['a request null', request(null), { rejects: 'ERR_INVALID_ARG_TYPE' }],
  ['a request with port a Symbol', dial({ port: bad(Symbol('p')) }), { rejects: 'ERR_INVALID_ARG_TYPE' }],
  ['a request with port a word', dial({ port: 'https' }), { rejects: 'ERR_SOCKET_BAD_PORT' }],
  ['a request with hostname a number', dial({ hostname: bad(127) }), { rejects: 'ERR_INVALID_ARG_TYPE' }],
  ['a request with servername a number', dial({ servername: bad(5) }), { rejects: 'ERR_INVALID_ARG_TYPE' }],
  ['a callback that is no function', () => connector({ porter })(bad(good()), bad(5)), throws('ERR_INVALID_ARG_TYPE')],
  [
    'an http request over a socket',
    dial({ protocol: 'http:', httpSocket: bad({}) }),
    { rejects: 'ERR_INVALID_ARG_VALUE' },
  ],
  ['an https request', dial({ servername: 'localhost' }), secured],
]);

corpus(cases, () => porter);
