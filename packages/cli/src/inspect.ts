/**
 * `porter inspect <url>`: reads a process's @porter/metrics endpoint (inspect-read.ts:
 * bounded in time and size, parsed as it streams) and shows its pools, counters and
 * connect-latency histogram; `--watch` refreshes in place, `--json` prints the state.
 * Every string the endpoint sent is made safe for a terminal before it is printed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InspectError, type InspectOptions, type InspectState, readState } from './inspect-read.js';
import { busiest, poolsTable } from './pools.js';
import { errorsText } from './progress.js';
import { histogram, keyValues, wantsColor } from './render.js';
import { safeJson, terminalSafe } from './sanitize.js';

export type { InspectState } from './inspect-read.js';

/** Pools shown in the table; the rest are summed in one row (--json has them all). */
const TABLE_POOLS = 100;

/** Codes by count, their names made safe. */
const safeCounts = (counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(counts).map(([k, v]) => [terminalSafe(k), v]));

/** The pools table: the busiest, then one row for the others; every label made safe. */
function busiestTable(s: InspectState, color: boolean): string {
  const { shown, others } = busiest(s.pools, TABLE_POOLS);
  const safe = shown.map((p) => ({ ...p, remote: terminalSafe(p.remote), local: terminalSafe(p.local) }));
  return poolsTable(safe, others, color, (n) => n.toLocaleString('en-US'));
}

/** The state for people. `previous` (with --watch) adds rates since the last read. */
export function formatState(
  s: InspectState,
  color: boolean,
  previous?: { state: InspectState; seconds: number },
): string {
  const out: string[] = [];
  const c = s.counters;
  const inUse = s.pools.reduce((n, p) => n + p.in_use, 0);
  const aging = s.pools.reduce((n, p) => n + p.aging, 0);
  out.push(
    `porter inspect ${terminalSafe(s.url)}: ${c.pools.toLocaleString('en-US')} pools, ${inUse.toLocaleString('en-US')} ports in use, ${aging.toLocaleString('en-US')} aging`,
  );
  if (s.pools.length > 0) out.push(busiestTable(s, color));
  const rate = (now: number, before: number | undefined): string =>
    previous === undefined || before === undefined
      ? ''
      : ` (${Math.round((now - before) / previous.seconds).toLocaleString('en-US')}/s)`;
  const p = previous?.state.counters;
  const errorsTotal = Object.values(c.connect_errors).reduce((a, b) => a + b, 0);
  const retriesTotal = Object.values(c.retries).reduce((a, b) => a + b, 0);
  out.push(
    '',
    keyValues(
      [
        ['allocations', `${c.allocations.toLocaleString('en-US')}${rate(c.allocations, p?.allocations)}`],
        [
          'releases',
          `${(c.releases.aging + c.releases.immediate).toLocaleString('en-US')} (aging ${c.releases.aging.toLocaleString('en-US')}, immediate ${c.releases.immediate.toLocaleString('en-US')})`,
        ],
        [
          'connects',
          `${s.connect_duration.count.toLocaleString('en-US')}${rate(s.connect_duration.count, previous?.state.connect_duration.count)}`,
        ],
        ['connect errors', `${errorsTotal.toLocaleString('en-US')}${errorsText(safeCounts(c.connect_errors))}`],
        [
          'retries',
          `${retriesTotal.toLocaleString('en-US')}${errorsText(safeCounts(Object.fromEntries(Object.entries(c.retries).filter(([, n]) => n > 0))))}`,
        ],
        ['exhausted', c.exhausted],
        ['kernel picks in the range', c.kernel_picks],
        ['kernel fallbacks', c.kernel_fallbacks],
      ],
      color,
    ),
  );
  const chart = histogram(
    'Connect latency (connects per bucket, since the process started)',
    s.connect_duration.buckets,
    color,
  );
  if (chart !== '') out.push('', chart);
  return out.join('\n');
}

/** Runs `porter inspect`; resolves to the exit code. */
export async function runInspect(options: InspectOptions): Promise<number> {
  const color = wantsColor(process.stdout);
  if (!options.watch) {
    const state = await readState(options);
    process.stdout.write(options.json ? `${safeJson(state)}\n` : `${formatState(state, color)}\n`);
    return 0;
  }
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.on('SIGINT', onSigint);
  let previous: { state: InspectState; at: number } | undefined;
  try {
    while (!stop.signal.aborted) {
      const at = performance.now();
      let text: string;
      let state: InspectState | undefined;
      try {
        state = await readState(options);
        text = options.json
          ? safeJson(state)
          : formatState(
              state,
              color,
              previous ? { state: previous.state, seconds: (at - previous.at) / 1000 } : undefined,
            );
      } catch (err) {
        if (!(err instanceof InspectError)) throw err;
        text = options.json
          ? JSON.stringify({ error: { code: err.code, message: err.message } })
          : `porter inspect: ${err.message}`;
      }
      if (process.stdout.isTTY && !options.json) {
        console.clear();
        text += `\n\nevery ${options.interval} s, Ctrl-C to stop`;
      }
      process.stdout.write(`${text}\n${process.stdout.isTTY || options.json ? '' : '\n'}`);
      if (state !== undefined) previous = { state, at };
      try {
        await sleep(options.interval * 1000, undefined, { signal: stop.signal });
      } catch {
        break;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return 0;
}
