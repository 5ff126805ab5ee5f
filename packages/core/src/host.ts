/** The host's port settings, and splitting a range between the processes of a cluster. */
import * as native from '@porter/native';
import { callNative, invalidArgType, invalidArgValue } from './errors.js';
import type { HostPorts } from './types.js';
import { validateInteger, validatePort } from './validate.js';

/**
 * The host's port settings as the kernel reports them now, for this process's network
 * namespace: what a Porter reads when it is made, and follows afterwards (it reads them
 * again about once a second).
 */
export function hostPorts(): HostPorts {
  const h = callNative(() => native.hostPorts());
  return {
    ephemeral: [h.ephemeral.first, h.ephemeral.last],
    reserved: h.reserved.map((i) => [i.first, i.last] as [number, number]),
    readFromSystem: h.readFromSystem,
    features: { bindAddressNoPort: h.bindAddressNoPort, localPortRange: h.localPortRange },
  };
}

/**
 * The `index`-th of `count` equal slices of `range` (the last takes the remainder): one
 * per process of a cluster. Throws ERR_OUT_OF_RANGE unless `0 <= index < count <=` the
 * number of ports of the range.
 */
export function partitionRange(range: readonly [number, number], index: number, count: number): [number, number] {
  if (!Array.isArray(range) || range.length !== 2) throw invalidArgType('range', 'an array [first, last]', range);
  const first = validatePort(range[0], 'range[0]');
  const last = validatePort(range[1], 'range[1]');
  if (first > last) throw invalidArgValue('range', range, 'must have first <= last');
  const size = last - first + 1;
  validateInteger(count, 'count', 1, Math.max(1, size));
  validateInteger(index, 'index', 0, count - 1);
  const [a, b] = callNative(() => native.partitionRange(first, last, index, count));
  return [a as number, b as number];
}
