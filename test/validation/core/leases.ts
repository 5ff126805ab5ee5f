/** The corpus of @porter/core, its leases: porter.allocate, allocate, lease.release, leaseOf. */
import { allocate, type Lease, leaseOf } from '@porter/core';
import {
  bad,
  caseList,
  type Expect,
  LONG_NAME,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../../helpers/corpus.js';
import { accepts, INF, NaN_, porter } from './target.js';

const { cases, add } = caseList();

export { cases as leaseCases };

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
