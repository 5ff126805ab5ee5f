/**
 * The bad-input corpus: one ava test per case, each calling one public function with
 * one bad (or odd but valid) input and asserting what the documentation promises: a
 * synchronous throw or a rejection with a stable `code` and Node's class for it, never
 * ERR_PORTER_INTERNAL, never a crash; and after each case, nothing left in use (so the
 * cases of a file run one after the other).
 */
import { type Porter, snapshot } from '@porter/core';
import test from 'ava';

/** Node's class for each of its codes (the codes porter throws as Node would). */
const CLASS_OF: Record<string, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor> = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_INVALID_IP_ADDRESS: TypeError,
  ERR_MISSING_ARGS: TypeError,
  ERR_INVALID_THIS: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
  ERR_SOCKET_BAD_PORT: RangeError,
};

export type Expect =
  /** Throws synchronously with this code (and its class, or Error for porter's own). */
  | { throws: string; type?: ErrorConstructor }
  /** Returns a promise that rejects with this code (a RegExp: any code it matches). */
  | { rejects: string | RegExp; type?: ErrorConstructor }
  /** Accepted: returns (or resolves to) something `check` accepts. */
  | { accepts: (value: unknown) => boolean | undefined | Promise<boolean> };

export interface Case {
  /** The public function, as users write it (`porter.connect`, `partitionRange`). */
  fn: string;
  /** What is odd about the input. */
  input: string;
  call: () => unknown;
  expect: Expect;
}

const describe = (e: Expect): string =>
  'throws' in e ? `throws ${e.throws}` : 'rejects' in e ? `rejects ${String(e.rejects)}` : 'is accepted';

/** Any value at all as the type a signature wants: these calls pass what TypeScript refuses. */
export const bad = <T>(value: unknown): T => value as T;

/** The expectation of a synchronous throw with `code` (and `type`, or Node's class for it). */
export const throws = (code: string, type?: ErrorConstructor): Expect =>
  type ? { throws: code, type } : { throws: code };

/**
 * Declares one test per case (of `test/validation/`); after each, nothing may be in use in
 * the Porter `porter()` returns or in the default Porter.
 */
export function corpus(cases: Case[], porter: () => Porter): void {
  const inUse = (): number => [...porter().snapshot(), ...snapshot()].reduce((n, p) => n + p.inUse.length, 0);
  for (const c of cases) {
    test.serial(`${c.fn}: ${c.input} ${describe(c.expect)}`, async (t) => {
      const e = c.expect;
      if ('throws' in e) {
        const err = t.throws(
          () => {
            const returned = c.call();
            // Not thrown: the failure is that, not what the promise may reject with later.
            if (returned instanceof Promise) returned.catch(() => {});
          },
          { code: e.throws, instanceOf: e.type ?? CLASS_OF[e.throws] ?? Error },
        );
        t.truthy(err?.message, 'an error with a message');
      } else if ('rejects' in e) {
        let pending: unknown;
        t.notThrows(() => {
          pending = c.call();
        }, 'no synchronous throw');
        t.true(pending instanceof Promise, 'returns a promise');
        const err = (await t.throwsAsync(pending as Promise<unknown>, {
          instanceOf: e.type ?? (typeof e.rejects === 'string' ? CLASS_OF[e.rejects] : undefined) ?? Error,
        })) as NodeJS.ErrnoException | undefined;
        const code = err?.code ?? '';
        if (typeof e.rejects === 'string') t.is(code, e.rejects);
        else t.regex(code, e.rejects);
        t.not(code, 'ERR_PORTER_INTERNAL');
      } else {
        let value = c.call();
        if (value instanceof Promise) value = await value;
        t.not(await e.accepts(value), false, `accepted, but ${String(value)} is not what was expected`);
      }
      t.is(inUse(), 0, 'nothing in use afterwards');
    });
  }
}

/** A getter that throws: a bad options object can fail while it is read. */
export function throwingGetter(name: string): object {
  return Object.defineProperty({}, name, {
    enumerable: true,
    get() {
      throw Object.assign(new Error(`${name} cannot be read`), { code: 'E_GETTER' });
    },
  });
}

/** A Proxy whose every property read throws. */
export function throwingProxy(): object {
  return new Proxy(
    {},
    {
      get(_target, key) {
        throw Object.assign(new Error(`${String(key)} cannot be read`), { code: 'E_PROXY' });
      },
    },
  );
}

/** A Proxy over `target` that only forwards (valid options through a Proxy work). */
export const forwardingProxy = <T extends object>(target: T): T => new Proxy(target, {});

/** `fields` on an object without a prototype. */
export const nullProto = <T extends object>(fields: T): T => Object.assign(Object.create(null) as T, fields);

/** A 300-character host name (longer than DNS allows; the resolver refuses it locally). */
export const LONG_NAME = `${'a'.repeat(63)}.`.repeat(4).concat('b'.repeat(44));

/** An object with the shape of an AbortSignal that is none. */
export const duckSignal = (): object => ({
  aborted: false,
  reason: undefined,
  addEventListener() {},
  removeEventListener() {},
});

/** Values of the wrong type for an options object. */
export const NOT_OBJECTS: [string, unknown][] = [
  ['null', null],
  ['a number', 5],
  ['a string', 'options'],
  ['a boolean', true],
  ['a Symbol', Symbol('options')],
  ['a BigInt', 10n],
  ['an array', []],
  ['a function', () => {}],
];
