/**
 * `porter inspect <url>`: reads a process's @porter/metrics endpoint (Prometheus text
 * format, parsed with parse-prometheus-text-format) and shows its pools, counters and
 * connect-latency histogram; `--watch` refreshes in place, `--json` prints the state.
 */
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import type { Bucket } from './latency.js';
import { POOL_HEAD, type PoolRow, poolTableRows } from './pools.js';
import { errorsText } from './progress.js';
import { histogram, keyValues, table, wantsColor } from './render.js';

/** Options of `porter inspect`, validated. */
export interface InspectOptions {
  url: URL;
  /** Metric name prefix the process registered with (default `porter_`). */
  prefix: string;
  watch: boolean;
  /** Seconds between two reads with --watch. */
  interval: number;
  /** Milliseconds for one read. */
  timeout: number;
  json: boolean;
}

/** What `porter inspect --json` prints: the state of the Porter behind the endpoint. */
export interface InspectState {
  url: string;
  /** Pools, as the exporter labels them (beyond its maxPools, one row with remote "other"). */
  pools: PoolRow[];
  counters: {
    pools: number;
    allocations: number;
    releases: { aging: number; immediate: number };
    retries: Record<string, number>;
    exhausted: number;
    kernel_fallbacks: number;
    /** Ports the kernel picked inside the range (modes hybrid and kernel). */
    kernel_picks: number;
    connect_errors: Record<string, number>;
  };
  /** Successful connects' durations: count per bucket (`le` in seconds; not cumulative). */
  connect_duration: { buckets: Bucket[]; count: number; sum_seconds: number };
}

/** Why an endpoint could not be read (exit code 1). */
export class InspectError extends Error {
  override readonly name = 'InspectError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const num = (text: string | undefined): number => {
  if (text === undefined) return 0;
  const n = Number(text);
  return Number.isFinite(n) ? n : text === '+Inf' ? Number.POSITIVE_INFINITY : 0;
};

/** Turns the exposition text into the state; throws when there is no porter metric in it. */
export function parseState(text: string, prefix: string, url: string): InspectState {
  let families: MetricFamily[];
  try {
    families = parsePrometheusTextFormat(text);
  } catch (err) {
    throw new InspectError(
      'ERR_PORTER_METRICS_FORMAT',
      `${url} did not answer in the Prometheus text format: ${(err as Error).message}`,
    );
  }
  const byName = new Map(families.map((f) => [f.name, f]));
  // The text format names a counter family with its _total; OpenMetrics without.
  const family = (name: string): MetricFamily | undefined =>
    byName.get(prefix + name) ?? byName.get(prefix + name.replace(/_total$/, ''));
  if (!family('pools') && !family('allocations_total')) {
    throw new InspectError(
      'ERR_PORTER_METRICS_MISSING',
      `${url} serves no ${prefix}* metrics: is it the endpoint of @porter/metrics (serveMetrics or your registry's route)? If the process registered them with another prefix, pass --prefix.`,
    );
  }
  const single = (name: string): number => num(family(name)?.metrics[0]?.value);
  const byLabel = (name: string, label: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of family(name)?.metrics ?? []) {
      const key = m.labels?.[label];
      if (key !== undefined) out[key] = num(m.value);
    }
    return out;
  };

  const pools = new Map<string, PoolRow>();
  const gauge = (name: string, field: 'in_use' | 'aging' | 'free'): void => {
    for (const m of family(name)?.metrics ?? []) {
      const remote = m.labels?.remote ?? '';
      const local = m.labels?.local ?? '';
      const key = `${remote}\u0000${local}`;
      let row = pools.get(key);
      if (row === undefined) {
        row = { remote, local, in_use: 0, aging: 0, free: 0 };
        pools.set(key, row);
      }
      row[field] = num(m.value);
    }
  };
  gauge('ports_in_use', 'in_use');
  gauge('ports_aging', 'aging');
  gauge('ports_free', 'free');

  const releases = byLabel('releases_total', 'mode');
  const duration = family('connect_duration_seconds')?.metrics[0];
  const cumulative = Object.entries(duration?.buckets ?? {})
    .map(([le, count]) => ({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: num(count) }))
    .sort((a, b) => a.le - b.le);
  const buckets: Bucket[] = cumulative.map((b, i) => ({
    le: Number.isFinite(b.le) ? b.le : '+Inf',
    count: b.count - (i > 0 ? (cumulative[i - 1] as { count: number }).count : 0),
  }));
  return {
    url,
    pools: [...pools.values()],
    counters: {
      pools: single('pools'),
      allocations: single('allocations_total'),
      releases: { aging: releases.aging ?? 0, immediate: releases.immediate ?? 0 },
      retries: byLabel('retries_total', 'code'),
      exhausted: single('exhausted_total'),
      kernel_fallbacks: single('kernel_fallbacks_total'),
      kernel_picks: single('kernel_picks_total'),
      connect_errors: byLabel('connect_errors_total', 'code'),
    },
    connect_duration: { buckets, count: num(duration?.count), sum_seconds: num(duration?.sum) },
  };
}

/** GET `url`: status and body. node:http rather than fetch, which refuses some ports (6000, ...). */
function get(url: URL, timeout: number): Promise<{ status: number; statusText: string; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsGet : httpGet)(
      url,
      { headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' }, timeout },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', body }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () =>
      request.destroy(Object.assign(new Error(`no answer within ${timeout} ms`), { code: 'ETIMEDOUT' })),
    );
    request.on('error', reject);
  });
}

/** Reads the endpoint once. */
export async function readState(options: InspectOptions): Promise<InspectState> {
  const url = options.url.href;
  let response: { status: number; statusText: string; body: string };
  try {
    response = await get(options.url, options.timeout);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InspectError(
      e.code ?? 'UNKNOWN',
      `cannot read ${url}: ${e.message}. Is the process running and serving @porter/metrics there (serveMetrics() resolves to its url)?`,
    );
  }
  if (response.status !== 200) {
    throw new InspectError(
      `HTTP_${response.status}`,
      `${url} answered ${response.status} ${response.statusText}: check the path (serveMetrics answers on /metrics by default)`,
    );
  }
  return parseState(response.body, options.prefix, url);
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
    `porter inspect ${s.url}: ${c.pools.toLocaleString('en-US')} pools, ${inUse.toLocaleString('en-US')} ports in use, ${aging.toLocaleString('en-US')} aging`,
  );
  if (s.pools.length > 0) out.push(table(POOL_HEAD, poolTableRows(s.pools), color));
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
        ['connect errors', `${errorsTotal.toLocaleString('en-US')}${errorsText(c.connect_errors)}`],
        [
          'retries',
          `${retriesTotal.toLocaleString('en-US')}${errorsText(Object.fromEntries(Object.entries(c.retries).filter(([, n]) => n > 0)))}`,
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
    process.stdout.write(options.json ? `${JSON.stringify(state)}\n` : `${formatState(state, color)}\n`);
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
          ? JSON.stringify(state)
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
