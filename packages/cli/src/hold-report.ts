/**
 * What `porter hold` reports: its options (validated), the result (`--json`'s object, the
 * last line of `--ndjson`), built from the run's {@link Tally}, and the summary for people.
 */
import type { PortMode } from '@porter/core';
import type { Destination } from './destinations.js';
import { type Bucket, formatMs, round3 } from './latency.js';
import { type OtherPools, type PoolRow, poolsTable } from './pools.js';
import { errorsText } from './progress.js';
import { histogram, keyValues } from './render.js';
import type { PoolState } from './runner.js';
import type { Tally } from './tally.js';
import type { Threshold, ThresholdResult } from './thresholds.js';

/** Options of `porter hold`, validated. */
export interface HoldOptions {
  targets: Destination[];
  /** Connections in total, spread over the targets in turn. */
  count: number;
  /** Connects started per second in all; 0 for as fast as the concurrency allows. */
  rate: number;
  /** Seconds over which the connect rate rises linearly to `rate` (0: at once). */
  ramp: number;
  /** Connects in flight at once (in all, shared by the workers). */
  concurrency: number;
  /** Processes the run is split over (1: this one only). */
  workers: number;
  local: string[];
  range: [number, number] | 'system' | undefined;
  mode: PortMode;
  /** Undefined: porter's default for the mode. */
  retries: number | undefined;
  fallback: boolean;
  /** Per connect (and TLS handshake, CONNACK, upgrade), in ms. */
  timeout: number;
  /** Seconds to hold the connections once all were tried. */
  duration: number;
  /** Seconds after which each connection is closed and another opened (churn). */
  lifetime: number | undefined;
  send: Buffer | undefined;
  /** A message written on every connection at `messageRate` a second. */
  message: Buffer | undefined;
  messageRate: number | undefined;
  /** MQTT topic pattern (%i: the connection's number, %c: its client id). */
  topic: string;
  tls: { servername?: string; ca?: Buffer; insecure: boolean } | undefined;
  /** Serve this run's @porter/metrics on this address while it runs (port 0: any free port). */
  metrics?: { host: string; port: number } | undefined;
  thresholds: Threshold[];
  json: boolean;
  /** One JSON object a second on stdout, then the result. */
  ndjson: boolean;
}

/** What `porter hold --json` prints as its last line. */
export interface HoldReport {
  targets: string[];
  tls: boolean;
  /** Porter's mode (--mode). */
  mode: PortMode;
  /** Processes the run was split over (--workers). */
  workers: number;
  /** Connections asked for (--count). */
  count: number;
  /** Connects tried to the end: opened + failed (replacements after a lifetime included). */
  attempted: number;
  opened: number;
  failed: number;
  /** Failed connects by error code. */
  errors: Record<string, number>;
  /** Opened connections that the peer closed or reset while they were held. */
  dropped: number;
  /** Connections closed at the end of their --lifetime (each replaced by a new connect). */
  churned: number;
  /** Connects whose port the kernel picked inside the range (modes hybrid and kernel). */
  kernel_picks: number;
  /** Connects whose port the kernel picked outside the range, porter's having none left. */
  kernel_fallbacks: number;
  /** Connects retried on another port, by the error that caused it. */
  retries: Record<string, number>;
  /** The first --count connections opened per second, from the first connect to the last settled. */
  rate_per_sec: number;
  connect_p50_ms: number | null;
  connect_p90_ms: number | null;
  connect_p99_ms: number | null;
  connect_max_ms: number | null;
  /** Connect latency per bucket of porter's histogram (`le` in seconds; not cumulative). */
  connect_histogram: Bucket[];
  /** Milliseconds from the first connect to the last of the first --count settled. */
  open_ms: number;
  /** Milliseconds the connections were held after that. */
  held_ms: number;
  /** The most ports aging at once, over all pools, before closing (sampled at each redraw). */
  aging_max: number;
  /** The pools once every connect had settled (with --lifetime: when closing began), before anything was closed. */
  pools: PoolRow[];
  /** Pools beyond the 100 busiest, summed. */
  other_pools: OtherPools | null;
  /** True when Ctrl-C stopped it. */
  interrupted: boolean;
  /** Where this run served its metrics (--metrics; with --workers, the first worker's), else null. */
  metrics_url: string | null;
  /** With --workers and --metrics: every worker's. */
  metrics_urls?: string[];
  /** With --message: messages written, come back (echoed or delivered), skipped (the socket's buffer was full). */
  messages_sent?: number;
  messages_received?: number;
  messages_skipped?: number;
  /** Round trips of the messages that came back, in ms. */
  rtt_p50_ms?: number | null;
  rtt_p90_ms?: number | null;
  rtt_p99_ms?: number | null;
  rtt_max_ms?: number | null;
  /** Message bytes written and bytes received, in all and per second from the first message to closing. */
  bytes_sent?: number;
  bytes_received?: number;
  bytes_sent_per_sec?: number;
  bytes_received_per_sec?: number;
  /** With --threshold: each one, the value it was judged on, and whether it was crossed. */
  thresholds?: ThresholdResult[];
  /** Workers that exited before the end (the run is then a failure), with why. */
  worker_failures?: string[];
}

/** How the run went, beside the tally. */
export interface RunFacts {
  options: HoldOptions;
  /** Pools and the Porters' counters when the connections were all open. */
  state: PoolState;
  heldMs: number;
  /** When closing began (wall ms), for the byte rates. */
  closingWall: number;
  interrupted: boolean;
  metricsUrls: string[];
  failures: string[];
}

const perSecond = (n: number, ms: number): number => (ms > 0 ? Math.round((n * 1000 * 10) / ms) / 10 : 0);

/** The result of the run. */
export function buildReport(tally: Tally, facts: RunFacts): HoldReport {
  const { options, state } = facts;
  const c = tally.counts;
  const lat = tally.latencies;
  const openMs = c.firstStartWall !== null && c.lastSettledWall !== null ? c.lastSettledWall - c.firstStartWall : 0;
  const report: HoldReport = {
    targets: options.targets.map((t) => t.text),
    tls: options.targets.some((t) => t.tls),
    mode: options.mode,
    workers: options.workers,
    count: options.count,
    attempted: c.opened + c.failed,
    opened: c.opened,
    failed: c.failed,
    errors: c.errors,
    dropped: c.dropped,
    churned: c.churned,
    kernel_picks: state.stats.kernelPicks,
    kernel_fallbacks: state.stats.kernelFallbacks,
    retries: state.stats.retries,
    rate_per_sec: perSecond(c.initialOpened, openMs),
    connect_p50_ms: round3(lat.quantile(0.5)),
    connect_p90_ms: round3(lat.quantile(0.9)),
    connect_p99_ms: round3(lat.quantile(0.99)),
    connect_max_ms: round3(lat.quantile(1)),
    connect_histogram: lat.buckets(),
    open_ms: Math.round(openMs),
    held_ms: Math.round(facts.heldMs),
    aging_max: tally.agingMax,
    pools: state.pools,
    other_pools: state.others.pools > 0 ? state.others : null,
    interrupted: facts.interrupted,
    metrics_url: facts.metricsUrls[0] ?? null,
    ...(options.workers > 1 && facts.metricsUrls.length > 0 ? { metrics_urls: facts.metricsUrls } : {}),
  };
  if (options.message !== undefined) {
    const span = c.firstMessageWall === null ? 0 : facts.closingWall - c.firstMessageWall;
    Object.assign(report, {
      messages_sent: c.messagesSent,
      messages_received: c.messagesReceived,
      messages_skipped: c.messagesSkipped,
      rtt_p50_ms: round3(tally.rtts.quantile(0.5)),
      rtt_p90_ms: round3(tally.rtts.quantile(0.9)),
      rtt_p99_ms: round3(tally.rtts.quantile(0.99)),
      rtt_max_ms: round3(tally.rtts.quantile(1)),
      bytes_sent: c.bytesSent,
      bytes_received: c.bytesReceived,
      bytes_sent_per_sec: perSecond(c.bytesSent, span),
      bytes_received_per_sec: perSecond(c.bytesReceived, span),
    });
  }
  if (facts.failures.length > 0) report.worker_failures = facts.failures;
  return report;
}

const n = (v: number): string => v.toLocaleString('en-US');

function verdict(r: HoldReport): string {
  if (r.interrupted) return `interrupted: ${n(r.attempted)} of ${n(r.count)} connects tried`;
  if (r.failed === 0) return `all ${n(r.opened)} connections opened`;
  return `${n(r.failed)} of ${n(r.attempted)} connects failed`;
}

function messageRows(r: HoldReport): [string, string][] {
  if (r.messages_sent === undefined) return [];
  const rtt = `p50 ${formatMs(r.rtt_p50_ms ?? undefined)}, p90 ${formatMs(r.rtt_p90_ms ?? undefined)}, p99 ${formatMs(r.rtt_p99_ms ?? undefined)}, max ${formatMs(r.rtt_max_ms ?? undefined)}`;
  return [
    [
      'messages',
      `${n(r.messages_sent)} sent, ${n(r.messages_received ?? 0)} back${r.messages_skipped ? `, ${n(r.messages_skipped)} skipped (buffer full)` : ''}`,
    ],
    ['round trip', r.messages_received ? rtt : 'none came back (is the peer an echo server?)'],
    [
      'bytes',
      `${n(Math.round(r.bytes_sent_per_sec ?? 0))}/s sent, ${n(Math.round(r.bytes_received_per_sec ?? 0))}/s received`,
    ],
  ];
}

/** The summary for people: totals, pools while held, thresholds, and the latency histogram. */
export function formatHoldReport(r: HoldReport, color: boolean): string {
  const out: string[] = [`porter hold: ${verdict(r)}`];
  const ms = (v: number | null): string => formatMs(v ?? undefined);
  out.push(
    keyValues(
      [
        ['destinations', `${r.targets.join(', ')}${r.tls ? ' (TLS)' : ''}`],
        ...(r.workers > 1 ? [['workers', `${r.workers} processes`] as [string, string]] : []),
        ['opened', r.opened],
        ['failed', `${n(r.failed)}${errorsText(r.errors)}`],
        ['dropped while held', r.dropped],
        ...(r.churned > 0
          ? [
              ['closed after their lifetime', `${n(r.churned)} (ports aging at most ${n(r.aging_max)})`] as [
                string,
                string,
              ],
            ]
          : []),
        ['rate', `${n(Math.round(r.rate_per_sec))} connections/s over ${formatMs(r.open_ms)}`],
        [
          'connect latency',
          `p50 ${ms(r.connect_p50_ms)}, p90 ${ms(r.connect_p90_ms)}, p99 ${ms(r.connect_p99_ms)}, max ${ms(r.connect_max_ms)}`,
        ],
        ...messageRows(r),
        ...(r.held_ms > 0 ? [['held', formatMs(r.held_ms)] as [string, string]] : []),
      ],
      color,
    ),
  );
  // Pools that held nothing (every connect refused) make no table.
  const rows = r.pools.filter((p) => p.in_use + p.aging > 0);
  if (rows.length > 0) {
    out.push('', 'Pools with every connection open:');
    out.push(poolsTable(rows, r.other_pools, color, String));
  }
  if (r.thresholds !== undefined) {
    out.push('', 'Thresholds:');
    for (const t of r.thresholds) {
      out.push(`  ${t.crossed ? 'CROSSED' : 'ok     '} ${t.expression} (${t.value === null ? 'no value' : t.value})`);
    }
  }
  if (r.worker_failures !== undefined) out.push('', ...r.worker_failures.map((f) => `porter hold: ${f}`));
  const chart = histogram('Connect latency (connections per bucket)', r.connect_histogram, color);
  if (chart !== '') out.push('', chart);
  return out.join('\n');
}
