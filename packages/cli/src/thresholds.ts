/**
 * `--threshold <expr>` of `porter hold`: `key op number` over the final result, e.g.
 * `connect_p99_ms<50`, `failed==0`, `rate_per_sec>1000`, `errors.ECONNREFUSED==0`. Parsed
 * (and refused, exit 2) before anything connects; evaluated on the result. A key without
 * a value in the result (a latency when nothing opened) crosses its threshold.
 */
import { UsageCodes, UsageError } from './usage.js';

/** The numeric keys of the result that thresholds may name. */
const KEYS = [
  'count',
  'attempted',
  'opened',
  'failed',
  'dropped',
  'churned',
  'kernel_picks',
  'kernel_fallbacks',
  'rate_per_sec',
  'connect_p50_ms',
  'connect_p90_ms',
  'connect_p99_ms',
  'connect_max_ms',
  'open_ms',
  'held_ms',
  'aging_max',
];

/** Keys the result has with --message only. */
const MESSAGE_KEYS = [
  'messages_sent',
  'messages_received',
  'messages_skipped',
  'rtt_p50_ms',
  'rtt_p90_ms',
  'rtt_p99_ms',
  'rtt_max_ms',
  'bytes_sent',
  'bytes_received',
  'bytes_sent_per_sec',
  'bytes_received_per_sec',
];

/** Maps of counts by code: `errors.ECONNREFUSED`, `retries.EADDRNOTAVAIL` (0 when absent). */
const MAPS = ['errors', 'retries'];

const OPS = {
  '<': (a: number, b: number) => a < b,
  '<=': (a: number, b: number) => a <= b,
  '>': (a: number, b: number) => a > b,
  '>=': (a: number, b: number) => a >= b,
  '==': (a: number, b: number) => a === b,
  '!=': (a: number, b: number) => a !== b,
} as const;

type Op = keyof typeof OPS;

/** One threshold, parsed. */
export interface Threshold {
  /** As typed. */
  expression: string;
  key: string;
  op: Op;
  value: number;
}

/** A threshold against the result: the value it had, and whether the threshold was crossed. */
export interface ThresholdResult {
  expression: string;
  /** The key's value in the result (null: it had none). */
  value: number | null;
  crossed: boolean;
}

const EXPRESSION = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

function refuse(expression: string, message: string, fix: string): UsageError {
  return new UsageError(UsageCodes.INVALID_ARG_VALUE, '--threshold', `--threshold "${expression}": ${message}`, fix);
}

/** Parses one `--threshold`; `messages` tells whether --message is given (the rtt_* keys need it). */
export function parseThreshold(expression: string, messages: boolean): Threshold {
  const match = EXPRESSION.exec(expression);
  if (match === null) {
    throw refuse(
      expression,
      'is not "key op number"',
      'write it as key, then one of < <= > >= == !=, then a number: --threshold connect_p99_ms<50 or --threshold failed==0',
    );
  }
  const [, key = '', op = '==', number = '0'] = match;
  const [head = '', code] = key.split('.', 2);
  const known = MAPS.includes(head)
    ? code !== undefined && code !== ''
    : KEYS.includes(key) || MESSAGE_KEYS.includes(key);
  if (!known) {
    throw refuse(
      expression,
      `"${key}" is not a numeric key of the result`,
      `use one of ${[...KEYS, ...MESSAGE_KEYS].join(', ')}, or errors.<code> / retries.<code>`,
    );
  }
  if (MESSAGE_KEYS.includes(key) && !messages) {
    throw refuse(
      expression,
      `${key} is measured with --message only`,
      'add --message and --message-rate, or leave it out',
    );
  }
  return { expression, key, op: op as Op, value: Number(number) };
}

/** The value of `key` in `result` (`errors.CODE` and `retries.CODE` count 0 when absent). */
function resultValue(result: object, key: string): number | null {
  const record = result as Record<string, unknown>;
  const [head = '', code] = key.split('.', 2);
  if (code !== undefined && MAPS.includes(head)) {
    const counts = (record[head] ?? {}) as Record<string, number>;
    return counts[code] ?? 0;
  }
  const value = record[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Each threshold against `result`. */
export function evaluateThresholds(thresholds: readonly Threshold[], result: object): ThresholdResult[] {
  return thresholds.map((t) => {
    const value = resultValue(result, t.key);
    return { expression: t.expression, value, crossed: value === null || !OPS[t.op](value, t.value) };
  });
}
