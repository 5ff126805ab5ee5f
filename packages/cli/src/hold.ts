/**
 * `porter hold`: opens connections through a Porter of its own (TCP, or TLS), at a rate
 * and a concurrency, holds them, closes them from this side, and reports what happened:
 * a live view while it runs, then a summary table, the pools, a latency histogram, and
 * with --json one JSON object as the last line of stdout.
 */
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostPorts, type PoolSummary, Porter, type PorterOptions, type PortMode } from '@porter/core';
import { type MetricsServer, registerPorterMetrics, serveMetrics } from '@porter/metrics';
import { connect as tlsConnect } from '@porter/tls';
import { Registry } from 'prom-client';
import { type Bucket, formatMs, Latencies, round3 } from './latency.js';
import { POOL_HEAD, type PoolRow, poolRow, poolTableRows } from './pools.js';
import { errorsText, type Progress, type ProgressView, plainView, terminalView } from './progress.js';
import { histogram, keyValues, table, wantsColor } from './render.js';
import { type Target, UsageCodes, UsageError } from './usage.js';

/** Options of `porter hold`, validated. */
export interface HoldOptions {
  targets: Target[];
  /** Connections in total, spread over the targets in turn. */
  count: number;
  /** Connects started per second; 0 for as fast as the concurrency allows. */
  rate: number;
  /** Connects in flight at once. */
  concurrency: number;
  local: string[];
  range: [number, number] | 'system' | undefined;
  mode: PortMode;
  /** Undefined: porter's default for the mode. */
  retries: number | undefined;
  fallback: boolean;
  /** Per connect (and TLS handshake), in ms. */
  timeout: number;
  /** Seconds to hold the connections once all were tried. */
  duration: number;
  send: Buffer | undefined;
  tls: { servername?: string; ca?: Buffer; insecure: boolean } | undefined;
  /** Serve this run's @porter/metrics on this address while it runs (port 0: any free port). */
  metrics?: { host: string; port: number } | undefined;
  json: boolean;
}

/** What `porter hold --json` prints as its last line. */
export interface HoldReport {
  targets: string[];
  tls: boolean;
  /** Porter's mode (--mode). */
  mode: PortMode;
  /** Connections asked for (--count). */
  count: number;
  /** Connects started (fewer than count after Ctrl-C). */
  attempted: number;
  opened: number;
  failed: number;
  /** Failed connects by error code. */
  errors: Record<string, number>;
  /** Opened connections that the peer closed or reset while they were held. */
  dropped: number;
  /** Connects whose port the kernel picked inside the range (modes hybrid and kernel). */
  kernel_picks: number;
  /** Connects whose port the kernel picked outside the range, porter's having none left. */
  kernel_fallbacks: number;
  /** Connects retried on another port, by the error that caused it. */
  retries: Record<string, number>;
  /** Connections opened per second, from the first connect to the last. */
  rate_per_sec: number;
  connect_p50_ms: number | null;
  connect_p90_ms: number | null;
  connect_p99_ms: number | null;
  connect_max_ms: number | null;
  /** Connect latency per bucket of porter's histogram (`le` in seconds; not cumulative). */
  connect_histogram: Bucket[];
  /** Milliseconds from the first connect to the last one settled. */
  open_ms: number;
  /** Milliseconds the connections were held after that. */
  held_ms: number;
  /** The pools once every connect had settled, before anything was closed. */
  pools: PoolRow[];
  /** Pools beyond the 100 busiest, summed. */
  other_pools: { pools: number; in_use: number; aging: number; free: number } | null;
  /** True when Ctrl-C stopped it. */
  interrupted: boolean;
  /** Where this run served its metrics (--metrics), else null. */
  metrics_url: string | null;
}

const MAX_POOLS = 100;
const VIEW_POOLS = 6;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 ? code : 'UNKNOWN';
}

/** Ends every socket (this side closes first), destroying those still open after `graceMs`. */
async function closeAll(sockets: Set<Socket>, graceMs: number): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const s of sockets) {
    if (s.closed) continue;
    waits.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
    s.end();
  }
  const all = Promise.all(waits);
  const timer = sleep(graceMs).then(() => 'late' as const);
  if ((await Promise.race([all, timer])) === 'late') for (const s of sockets) s.destroy();
  await all;
}

/** A Porter for these options; a mode this host cannot honour is a usage error. */
function makePorter(options: PorterOptions): Porter {
  try {
    return new Porter(options);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code !== UsageCodes.MODE_UNSUPPORTED) throw err;
    const ephemeral = hostPorts().ephemeral;
    throw new UsageError(
      UsageCodes.MODE_UNSUPPORTED,
      '--mode',
      e.message,
      `use --mode hybrid, or a --range that covers the kernel's ephemeral range, e.g. --range ${ephemeral[0]}-${ephemeral[1]}`,
    );
  }
}

/** Serves `porter`'s metrics (a registry of its own) for `porter inspect`. */
async function serve(porter: Porter, at: { host: string; port: number }): Promise<MetricsServer> {
  const registry = new Registry();
  registerPorterMetrics({ porter, registry });
  return serveMetrics({ host: at.host, port: at.port, registry });
}

/** Runs `porter hold`; resolves to the exit code and the report. */
export async function runHold(options: HoldOptions): Promise<{ code: number; report: HoldReport }> {
  const human = options.json ? process.stderr : process.stdout;
  const color = wantsColor(human);
  const porterOptions: PorterOptions = {
    mode: options.mode,
    ...(options.retries !== undefined ? { retry: { attempts: options.retries } } : {}),
    kernelFallback: options.fallback,
    ...(options.range !== undefined ? { portRange: options.range } : {}),
    ...(options.local.length > 0 ? { localAddresses: options.local } : {}),
  };
  const porter = makePorter(porterOptions);
  const metrics = options.metrics === undefined ? undefined : await serve(porter, options.metrics);
  if (metrics !== undefined) human.write(`porter hold: metrics at ${metrics.url} (porter inspect ${metrics.url})\n`);
  const latencies = new Latencies();
  const sockets = new Set<Socket>();
  const errors: Record<string, number> = {};
  const stop = new AbortController();
  // Every connect in flight listens to it.
  setMaxListeners(options.concurrency + 16, stop.signal);
  let opened = 0;
  let failed = 0;
  let dropped = 0;
  let next = 0;
  let closing = false;
  let phase: Progress['phase'] = 'opening';
  const started = performance.now();
  let openedAt = started;
  let lastSettled = started;
  let holdUntil: number | undefined;

  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    stop.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const summary = (): PoolSummary => porter.poolSummary(VIEW_POOLS);
  const progress = (): Progress => {
    const s = summary();
    const now = performance.now();
    const window = (phase === 'opening' ? now : lastSettled) - started;
    return {
      phase,
      total: options.count,
      opened,
      failed,
      errors,
      dropped,
      open: sockets.size,
      ratePerSec: window > 0 ? (opened * 1000) / window : 0,
      p50Ms: latencies.quantile(0.5),
      p99Ms: latencies.quantile(0.99),
      elapsedMs: now - started,
      ...(holdUntil !== undefined ? { holdLeftSec: Math.max(0, (holdUntil - now) / 1000) } : {}),
      pools: s.busiest.map(poolRow),
      otherPools: s.others.pools,
    };
  };
  const view: ProgressView = human.isTTY ? terminalView(human) : plainView(human);
  const ticker = setInterval(() => view.update(progress()), human.isTTY ? 100 : 250);

  const tls = options.tls;
  const connectOne = async (target: Target): Promise<void> => {
    const t0 = performance.now();
    try {
      const socket: Socket = tls
        ? await tlsConnect({
            host: target.host,
            port: target.port,
            porter,
            timeout: options.timeout,
            signal: stop.signal,
            rejectUnauthorized: !tls.insecure,
            ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
          })
        : await porter.connect({ host: target.host, port: target.port, timeout: options.timeout, signal: stop.signal });
      latencies.add(performance.now() - t0);
      opened += 1;
      sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        sockets.delete(socket);
        if (!closing) dropped += 1;
      });
      socket.resume();
      if (options.send !== undefined) socket.write(options.send);
    } catch (err) {
      if (stop.signal.aborted && codeOf(err) === 'ABORT_ERR') return; // not tried to the end: neither opened nor failed
      failed += 1;
      const code = codeOf(err);
      errors[code] = (errors[code] ?? 0) + 1;
    } finally {
      lastSettled = performance.now();
    }
  };

  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted && next < options.count) {
      const i = next++;
      if (options.rate > 0) {
        const due = started + (i * 1000) / options.rate;
        const wait = due - performance.now();
        if (wait > 0) {
          try {
            await sleep(wait, undefined, { signal: stop.signal });
          } catch {
            return; // Ctrl-C before its turn: not tried
          }
        }
      }
      if (i === 0) openedAt = performance.now();
      await connectOne(options.targets[i % options.targets.length] as Target);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.count) }, worker));
  const attempted = opened + failed;
  const openMs = lastSettled - openedAt;
  const held = porter.poolSummary(MAX_POOLS);
  const stats = porter.stats();

  const holdStart = performance.now();
  if (!stop.signal.aborted && options.duration > 0 && sockets.size > 0) {
    phase = 'holding';
    holdUntil = holdStart + options.duration * 1000;
    try {
      await sleep(options.duration * 1000, undefined, { signal: stop.signal });
    } catch {
      // Ctrl-C while holding
    }
  }
  const heldMs = sockets.size > 0 || options.duration > 0 ? performance.now() - holdStart : 0;
  holdUntil = undefined;
  phase = 'closing';
  closing = true;
  view.update(progress());
  await closeAll(sockets, 5_000);
  clearInterval(ticker);
  const interrupted = stop.signal.aborted;
  phase = interrupted ? 'interrupted' : 'done';
  view.stop(progress());
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  await metrics?.close();

  const report: HoldReport = {
    targets: options.targets.map((t) => t.text),
    tls: tls !== undefined,
    mode: options.mode,
    count: options.count,
    attempted,
    opened,
    failed,
    errors,
    dropped,
    kernel_picks: stats.kernelPicks,
    kernel_fallbacks: stats.kernelFallbacks,
    retries: Object.fromEntries(Object.entries(stats.retries).filter(([, n]) => n > 0)),
    rate_per_sec: openMs > 0 ? Math.round((opened * 1000 * 10) / openMs) / 10 : 0,
    connect_p50_ms: round3(latencies.quantile(0.5)),
    connect_p90_ms: round3(latencies.quantile(0.9)),
    connect_p99_ms: round3(latencies.quantile(0.99)),
    connect_max_ms: round3(latencies.quantile(1)),
    connect_histogram: latencies.buckets(),
    open_ms: Math.round(openMs),
    held_ms: Math.round(heldMs),
    pools: held.busiest.map(poolRow),
    other_pools:
      held.others.pools > 0
        ? { pools: held.others.pools, in_use: held.others.inUse, aging: held.others.aging, free: held.others.free }
        : null,
    interrupted,
    metrics_url: metrics?.url ?? null,
  };
  human.write(`\n${formatHoldReport(report, color)}\n`);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return { code: interrupted ? 130 : failed > 0 ? 1 : 0, report };
}

/** The summary for people: totals, pools while held, and the latency histogram. */
export function formatHoldReport(r: HoldReport, color: boolean): string {
  const out: string[] = [];
  const verdict = r.interrupted
    ? `interrupted: ${r.attempted.toLocaleString('en-US')} of ${r.count.toLocaleString('en-US')} connects tried`
    : r.failed === 0
      ? `all ${r.opened.toLocaleString('en-US')} connections opened`
      : `${r.failed.toLocaleString('en-US')} of ${r.attempted.toLocaleString('en-US')} connects failed`;
  out.push(`porter hold: ${verdict}`);
  out.push(
    keyValues(
      [
        ['destinations', `${r.targets.join(', ')}${r.tls ? ' (TLS)' : ''}`],
        ['opened', r.opened],
        ['failed', `${r.failed.toLocaleString('en-US')}${errorsText(r.errors)}`],
        ['dropped while held', r.dropped],
        ['rate', `${Math.round(r.rate_per_sec).toLocaleString('en-US')} connections/s over ${formatMs(r.open_ms)}`],
        [
          'connect latency',
          `p50 ${formatMs(r.connect_p50_ms ?? undefined)}, p90 ${formatMs(r.connect_p90_ms ?? undefined)}, p99 ${formatMs(r.connect_p99_ms ?? undefined)}, max ${formatMs(r.connect_max_ms ?? undefined)}`,
        ],
        ...(r.held_ms > 0 ? [['held', formatMs(r.held_ms)] as [string, string]] : []),
      ],
      color,
    ),
  );
  if (r.pools.length > 0) {
    out.push('', 'Pools with every connection open:');
    const rows = poolTableRows(r.pools);
    if (r.other_pools) {
      rows.push([
        `${r.other_pools.pools} other pools`,
        '',
        r.other_pools.in_use,
        r.other_pools.aging,
        r.other_pools.free,
      ]);
    }
    out.push(table(POOL_HEAD, rows, color));
  }
  const chart = histogram('Connect latency (connections per bucket)', r.connect_histogram, color);
  if (chart !== '') out.push('', chart);
  return out.join('\n');
}
