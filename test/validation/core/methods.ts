/** The corpus of @porter/core, a Porter's other methods: inspection, methods called on other objects, a closed Porter. */
import { defaultPorter, Porter } from '@porter/core';
import { bad, caseList, throws } from '../../helpers/corpus.js';
import { accepts, closedPorter, INF, NaN_, port, porter } from './target.js';

const { cases, add } = caseList();

export { cases as methodCases };

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
