/** The corpus of @porter/core, its options: new Porter, partitionRange, hostPorts, configureDefault. */
import { configureDefault, hostPorts, Porter, type PorterOptions, partitionRange } from '@porter/core';
import {
  bad,
  caseList,
  type Expect,
  forwardingProxy,
  NOT_OBJECTS,
  nullProto,
  throwingGetter,
  throwingProxy,
  throws,
} from '../../helpers/corpus.js';
import { accepts, INF, NaN_ } from './target.js';

const { cases, add } = caseList();

export { cases as optionCases };

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
