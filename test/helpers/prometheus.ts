/**
 * A real Prometheus for tests (Debian's `prometheus` binary): started on a free loopback
 * port with a storage directory of its own and a short scrape interval, scraping the
 * targets given; and its HTTP API (instant and range queries, label values, alerts).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepting, spawnOnFreePorts, stop } from './external-servers.js';
import { delay, eventually } from './wait.js';

/** One sample of an instant query's vector. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** One series of a range query's matrix. */
export interface PromSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

/** A scrape job: its name and `host:port` targets. */
export interface ScrapeJob {
  job: string;
  targets: string[];
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** Scrape and rule evaluation interval (default '1s'). */
  interval?: string;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
  /** Port to listen on, on 127.0.0.1 (default: a free one; a fixed one inside a namespace of the test's own). */
  port?: number;
}

export interface Prometheus {
  /** The API's base URL, `http://host:port/api/v1`. */
  api: string;
  /** Its output so far (for a failing test's log). */
  log(): string;
  /** SIGTERM (SIGKILL after 5 s), then removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts Prometheus scraping `options.jobs` and resolves once it is ready: it accepts
 * connections and answers /-/ready with 200 (a free port is tried again on a collision).
 */
export async function startPrometheus(binary: string, options: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'porter-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  const interval = options.interval ?? '1s';
  const lines = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
  ];
  if (options.ruleFiles !== undefined) lines.push('rule_files:', ...options.ruleFiles.map((f) => `  - '${f}'`));
  lines.push('scrape_configs:');
  for (const { job, targets } of options.jobs) {
    lines.push(
      `  - job_name: '${job}'`,
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    );
  }
  writeFileSync(config, `${lines.join('\n')}\n`);
  const ready = async (url: string): Promise<boolean> => {
    try {
      return (await fetch(url)).ok;
    } catch {
      return false;
    }
  };
  try {
    const { ports, child, output } = await spawnOnFreePorts(
      1,
      ([port]) =>
        spawn(
          binary,
          [
            `--config.file=${config}`,
            `--storage.tsdb.path=${join(dir, 'data')}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--storage.tsdb.retention.time=1h',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ),
      async ([port], child) => {
        await accepting(port as number, child, 30_000);
        // It accepts before it is ready (503 while it opens its storage).
        if (!(await eventually(() => ready(`http://127.0.0.1:${port}/-/ready`), once(child, 'exit')))) {
          throw new Error('prometheus exited before it was ready');
        }
      },
      options.port === undefined ? undefined : [options.port],
    );
    let stopping: Promise<void> | undefined;
    return {
      api: `http://127.0.0.1:${ports[0]}/api/v1`,
      log: output,
      stop() {
        stopping ??= (async () => {
          await stop(child);
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** What an API call answered: its data, or its error (HTTP failures and `status: "error"` alike). */
export type ApiAnswer<T> = { ok: true; data: T } | { ok: false; error: string };

/** GET `path` of the API with `params`; never throws (a refused connection is an error answer). */
export async function api<T>(
  base: string,
  path: string,
  params: Record<string, string | string[]>,
): Promise<ApiAnswer<T>> {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) search.append(k, one);
  try {
    const res = await fetch(`${base}${path}?${search}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') return { ok: false, error: `${body.errorType ?? res.status}: ${body.error ?? ''}` };
    return { ok: true, data: body.data };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** Instant query (at `time`, Unix seconds, or now). */
export function instant(base: string, promql: string, time?: number): Promise<ApiAnswer<{ result: PromSample[] }>> {
  return api(base, '/query', time === undefined ? { query: promql } : { query: promql, time: String(time) });
}

/** Range query over [start, end] (Unix seconds) every `step` seconds. */
export function range(
  base: string,
  promql: string,
  start: number,
  end: number,
  step: number,
): Promise<ApiAnswer<{ result: PromSeries[] }>> {
  return api(base, '/query_range', { query: promql, start: String(start), end: String(end), step: String(step) });
}

/** Instant query; [] on any error (while Prometheus is not up yet). */
export async function query(base: string, promql: string): Promise<PromSample[]> {
  const answer = await instant(base, promql);
  return answer.ok ? answer.data.result : [];
}

/** Polls `promql` until `accept` holds for its result, or throws after `timeoutMs`. */
export async function waitFor(
  base: string,
  promql: string,
  accept: (r: PromSample[]) => boolean,
  timeoutMs = 30_000,
): Promise<PromSample[]> {
  const deadline = performance.now() + timeoutMs;
  let last: PromSample[] = [];
  while (performance.now() < deadline) {
    last = await query(base, promql);
    if (accept(last)) return last;
    await delay(250);
  }
  throw new Error(`${promql} never matched within ${timeoutMs} ms; last result: ${JSON.stringify(last)}`);
}
