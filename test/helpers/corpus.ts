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

/** A scope by index that no interface has (indexes are counted up from 1 as interfaces come). */
export const NO_INDEX = 'fe80::1%2147483647';

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

/** One row of a corpus: what is odd about the input, the call, what is expected. */
export type Row = [string, () => unknown, Expect];

/** A list of cases, and `add(fn, rows)` that appends the rows of one public function to it. */
export function caseList(): { cases: Case[]; add: (fn: string, rows: Row[]) => void } {
  const cases: Case[] = [];
  const add = (fn: string, rows: Row[]): void => {
    for (const [input, call, expect] of rows) cases.push({ fn, input, call, expect });
  };
  return { cases, add };
}

/**
 * The rows every Agent of porter's shares (`new Agent(options)` of @porter/core and of
 * @porter/tls): Node's Agent's own checks, porter's `porter` option, the options an Agent
 * cannot honour, the connect options laid over every connection, and the odd but valid.
 */
export function agentRows(Agent: new (options?: never) => { destroy(): void }, porter: () => Porter): Row[] {
  const agent = (options: unknown) => () => new Agent(bad(options));
  const made: Expect = {
    accepts: (a) => {
      (a as { destroy(): void }).destroy();
      return a instanceof Agent;
    },
  };
  return [
    ['options a number', agent(5), throws('ERR_INVALID_ARG_TYPE')],
    ['options a string', agent('keepAlive'), throws('ERR_INVALID_ARG_TYPE')],
    ['porter a plain object', agent({ porter: {} }), throws('ERR_INVALID_ARG_TYPE')],
    ['porter null', agent({ porter: null }), throws('ERR_INVALID_ARG_TYPE')],
    ['porter a number', agent({ porter: 5 }), throws('ERR_INVALID_ARG_TYPE')],
    ["maxTotalSockets 0 (Node's check)", agent({ maxTotalSockets: 0 }), throws('ERR_OUT_OF_RANGE')],
    ["scheduling unknown (Node's check)", agent({ scheduling: 'random' }), throws('ERR_INVALID_ARG_VALUE')],
    ['localPort given', agent({ localPort: 1 }), throws('ERR_INVALID_ARG_VALUE')],
    ['socketPath given', agent({ socketPath: '/tmp/porter.sock' }), throws('ERR_INVALID_ARG_VALUE')],
    ['fd given', agent({ fd: 3 }), throws('ERR_INVALID_ARG_VALUE')],
    ['timeout -1', agent({ timeout: -1 }), throws('ERR_OUT_OF_RANGE')],
    ['timeout a string', agent({ timeout: '5s' }), throws('ERR_INVALID_ARG_TYPE')],
    ['localAddress a name', agent({ localAddress: 'localhost' }), throws('ERR_INVALID_IP_ADDRESS')],
    ['family 5', agent({ family: 5 }), throws('ERR_INVALID_ARG_VALUE')],
    ['lookup a string', agent({ lookup: 'dns' }), throws('ERR_INVALID_ARG_TYPE')],
    ['socketOptions with a bad tos', agent({ socketOptions: { tos: 3 } }), throws('ERR_INVALID_ARG_VALUE')],
    ['a throwing getter', agent(throwingGetter('porter')), throws('E_GETTER', Error)],
    ['options undefined', agent(undefined), made],
    ['options null', agent(null), made],
    ['localPort 0 (any port)', agent({ localPort: 0 }), made],
    ["path (the HTTP path, which Node's Agent clears)", agent({ path: '/' }), made],
    ['timeout beyond 2^31-1', agent({ timeout: 3e9 }), made],
    ['a frozen object', () => new Agent(bad(Object.freeze({ porter: porter(), keepAlive: true }))), made],
  ];
}

/**
 * A `lookup` that answers 'localhost' (any name) with 127.0.0.1, where the tests' servers
 * listen, so that nothing asks the host's resolver.
 */
export const localhostV4 = (
  _host: string,
  options: { all?: boolean },
  callback: (err: null, address: string | { address: string; family: number }[], family?: number) => void,
): void => {
  process.nextTick(() =>
    options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4),
  );
};

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
