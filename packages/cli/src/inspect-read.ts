/**
 * One read of a metrics endpoint for `porter inspect`, that the endpoint cannot turn
 * against its reader: a deadline on the whole read (connect, answer, body), a cap on the
 * body ({@link MAX_BODY}), redirects not followed, and the body parsed as it streams in
 * (exposition.ts) into the {@link InspectState}, never held whole.
 */
import { type ClientRequest, get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { ExpositionError, ExpositionReader } from './exposition.js';
import type { Bucket } from './latency.js';
import type { PoolRow } from './pools.js';
import { terminalSafe } from './sanitize.js';

/** Options of `porter inspect`, validated. */
export interface InspectOptions {
  url: URL;
  /** Metric name prefix the process registered with (default `porter_`). */
  prefix: string;
  watch: boolean;
  /** Seconds between two reads with --watch. */
  interval: number;
  /** Milliseconds for one whole read: connect, answer and body. */
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

/** Why an endpoint could not be read (exit code 1). Its message is safe to print on a terminal. */
export class InspectError extends Error {
  override readonly name = 'InspectError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(terminalSafe(message));
  }
}

/** The most a body may hold (64 MiB): an endpoint of porter's metrics is a few kilobytes. */
export const MAX_BODY = 64 * 1024 * 1024;

/** Collects the samples of porter's metrics into the state. */
class StateBuilder {
  readonly pools = new Map<string, PoolRow>();
  readonly singles = new Map<string, number>();
  readonly byLabel = new Map<string, Record<string, number>>();
  readonly cumulative: { le: number; count: number }[] = [];
  durationCount = 0;
  durationSum = 0;
  seen = false;

  constructor(private readonly prefix: string) {}

  sample = (name: string, labels: Record<string, string>, value: number): void => {
    const short = name.slice(this.prefix.length);
    const count = Number.isFinite(value) ? value : 0;
    if (short === 'pools' || short === 'allocations_total') this.seen = true;
    switch (short) {
      case 'ports_in_use':
        this.#pool(labels).in_use = count;
        break;
      case 'ports_aging':
        this.#pool(labels).aging = count;
        break;
      case 'ports_free':
        this.#pool(labels).free = count;
        break;
      case 'releases_total':
        this.#label(short, labels.mode, count);
        break;
      case 'retries_total':
      case 'connect_errors_total':
        this.#label(short, labels.code, count);
        break;
      case 'connect_duration_seconds_bucket':
        if (labels.le !== undefined) {
          const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
          if (!Number.isNaN(le)) this.cumulative.push({ le, count });
        }
        break;
      case 'connect_duration_seconds_count':
        this.durationCount = count;
        break;
      case 'connect_duration_seconds_sum':
        this.durationSum = count;
        break;
      default:
        this.singles.set(short, count);
    }
  };

  #pool(labels: Record<string, string>): PoolRow {
    const remote = labels.remote ?? '';
    const local = labels.local ?? '';
    const key = `${remote}\u0000${local}`;
    let row = this.pools.get(key);
    if (row === undefined) {
      row = { remote, local, in_use: 0, aging: 0, free: 0 };
      this.pools.set(key, row);
    }
    return row;
  }

  #label(name: string, key: string | undefined, value: number): void {
    if (key === undefined) return;
    let map = this.byLabel.get(name);
    if (map === undefined) {
      map = {};
      this.byLabel.set(name, map);
    }
    map[key] = value;
  }

  state(url: string): InspectState {
    const cumulative = [...this.cumulative].sort((a, b) => a.le - b.le);
    const buckets: Bucket[] = cumulative.map((b, i) => ({
      le: Number.isFinite(b.le) ? b.le : '+Inf',
      count: b.count - (i > 0 ? (cumulative[i - 1] as { count: number }).count : 0),
    }));
    const single = (name: string): number => this.singles.get(name) ?? 0;
    const releases = this.byLabel.get('releases_total') ?? {};
    return {
      url,
      pools: [...this.pools.values()],
      counters: {
        pools: single('pools'),
        allocations: single('allocations_total'),
        releases: { aging: releases.aging ?? 0, immediate: releases.immediate ?? 0 },
        retries: this.byLabel.get('retries_total') ?? {},
        exhausted: single('exhausted_total'),
        kernel_fallbacks: single('kernel_fallbacks_total'),
        kernel_picks: single('kernel_picks_total'),
        connect_errors: this.byLabel.get('connect_errors_total') ?? {},
      },
      connect_duration: { buckets, count: this.durationCount, sum_seconds: this.durationSum },
    };
  }
}

/**
 * GET `url` and feed the body to `onChunk` (which may throw to stop), within `timeout` ms
 * for everything. Resolves to the status once the body ended (or at once for a status
 * other than 200, whose body is not read). node:http rather than fetch, which refuses some
 * ports (6000, ...); neither follows redirects here.
 */
function get(url: URL, timeout: number, onChunk: (chunk: Buffer) => void): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let request: ClientRequest | undefined;
    let received = 0;
    const fail = (err: Error): void => {
      clearTimeout(deadline);
      request?.destroy();
      reject(err);
    };
    const deadline = setTimeout(
      () =>
        fail(Object.assign(new Error(`no complete answer within ${timeout} ms (--timeout)`), { code: 'ETIMEDOUT' })),
      timeout,
    );
    const options = { headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' }, agent: false as const };
    request = (url.protocol === 'https:' ? httpsGet : httpGet)(url, options, (response) => {
      if (response.statusCode !== 200) {
        clearTimeout(deadline);
        request?.destroy();
        resolve(response);
        return;
      }
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_BODY) {
          fail(
            new InspectError(
              'ERR_PORTER_METRICS_TOO_LARGE',
              `${url.href} answered more than ${MAX_BODY / 1024 / 1024} MiB: not a porter metrics endpoint (its answer is a few kilobytes per pool); reading stopped there`,
            ),
          );
          return;
        }
        try {
          onChunk(chunk);
        } catch (err) {
          fail(err as Error);
        }
      });
      response.once('end', () => {
        clearTimeout(deadline);
        resolve(response);
      });
      response.once('error', fail);
    });
    request.once('error', fail);
  });
}

/** Reads the endpoint once. */
export async function readState(options: InspectOptions): Promise<InspectState> {
  const url = options.url.href;
  const builder = new StateBuilder(options.prefix);
  const reader = new ExpositionReader(options.prefix, builder.sample);
  let response: IncomingMessage;
  try {
    response = await get(options.url, options.timeout, (chunk) => reader.write(chunk));
    if (response.statusCode === 200) reader.end();
  } catch (err) {
    if (err instanceof InspectError) throw err;
    if (err instanceof ExpositionError) {
      throw new InspectError(
        'ERR_PORTER_METRICS_FORMAT',
        `${url} did not answer in the Prometheus text format: ${err.message}`,
      );
    }
    const e = err as NodeJS.ErrnoException;
    throw new InspectError(
      e.code ?? 'UNKNOWN',
      `cannot read ${url}: ${e.message}. Is the process running and serving @porter/metrics there (serveMetrics() resolves to its url)?`,
    );
  }
  const status = response.statusCode ?? 0;
  if (status !== 200) {
    const redirect = status >= 300 && status < 400;
    throw new InspectError(
      `HTTP_${status}`,
      `${url} answered ${status} ${response.statusMessage ?? ''}: ${
        redirect
          ? `redirects are not followed; give the URL the process serves its metrics on${response.headers.location ? ` (it points to ${response.headers.location})` : ''}`
          : 'check the path (serveMetrics answers on /metrics by default)'
      }`,
    );
  }
  if (!builder.seen) {
    throw new InspectError(
      'ERR_PORTER_METRICS_MISSING',
      `${url} serves no ${options.prefix}* metrics: is it the endpoint of @porter/metrics (serveMetrics or your registry's route)? If the process registered them with another prefix, pass --prefix.`,
    );
  }
  return builder.state(url);
}
