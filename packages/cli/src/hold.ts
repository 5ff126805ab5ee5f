/**
 * `porter hold`: opens connections through porter (raw TCP, TLS, MQTT or WebSocket
 * clients), at a rate (with a ramp) and a concurrency, in this process or split over
 * --workers child processes; holds them (closing and reopening each after its --lifetime,
 * sending --message at its rate); closes them from this side, and reports what happened:
 * one live view while it runs (or one JSON object a second with --ndjson), then a summary,
 * the pools, thresholds and a latency histogram, and with --json one JSON object as the
 * last line of stdout. Exit code: 0, 1 some connects failed, 99 a threshold crossed, 130
 * Ctrl-C.
 */
import type { PorterOptions } from '@porter/core';
import { buildReport, formatHoldReport, type HoldOptions, type HoldReport } from './hold-report.js';
import { type Latencies, round3 } from './latency.js';
import { ensureDescriptors } from './limits.js';
import { mergeOthers } from './pools.js';
import { type Progress, type ProgressView, plainView, terminalView } from './progress.js';
import { wantsColor } from './render.js';
import { LocalRunner, makePorter, mergePools, type PoolState, type Runner, type WorkerSpec } from './runner.js';
import { Tally } from './tally.js';
import { evaluateThresholds } from './thresholds.js';
import { UsageCodes, UsageError } from './usage.js';
import { childRunners } from './workers.js';

export type { HoldReport } from './hold-report.js';

/** What every process of the run is given (each worker gets its share of the engine's part). */
function specOf(o: HoldOptions): WorkerSpec {
  const porter: PorterOptions = {
    mode: o.mode,
    ...(o.retries !== undefined ? { retry: { attempts: o.retries } } : {}),
    kernelFallback: o.fallback,
    ...(o.range !== undefined ? { portRange: o.range } : {}),
    ...(o.local.length > 0 ? { localAddresses: o.local } : {}),
  };
  return {
    porter,
    engine: {
      destinations: o.targets,
      count: o.count,
      rate: o.rate,
      ramp: o.ramp,
      offset: 0,
      stride: 1,
      concurrency: o.concurrency,
      timeout: o.timeout,
      lifetime: o.lifetime,
      messageRate: o.messageRate,
      message: o.message,
    },
    link: {
      tls: o.tls ?? { insecure: false },
      send: o.send,
      message: o.message,
      topic: o.topic,
      clientPrefix: `porter-${process.pid}-`,
      timeout: o.timeout,
    },
    metrics: o.metrics,
  };
}

/** The pools and counters of several processes as one (`disjoint`: see mergePools). */
function mergeStates(states: readonly PoolState[], disjoint: boolean): PoolState {
  const retries: Record<string, number> = {};
  for (const s of states)
    for (const [code, n] of Object.entries(s.stats.retries)) retries[code] = (retries[code] ?? 0) + n;
  return {
    pools: mergePools(
      states.map((s) => s.pools),
      disjoint,
    ),
    others: mergeOthers(states.map((s) => s.others)),
    stats: {
      kernelPicks: states.reduce((n, s) => n + s.stats.kernelPicks, 0),
      kernelFallbacks: states.reduce((n, s) => n + s.stats.kernelFallbacks, 0),
      retries,
    },
  };
}

/** The exit code: Ctrl-C, a worker lost, then the thresholds decide if there are any, else failed connects. */
function exitCode(r: HoldReport): number {
  if (r.interrupted) return 130;
  if (r.worker_failures !== undefined) return 1;
  if (r.thresholds !== undefined) return r.thresholds.some((t) => t.crossed) ? 99 : 0;
  return r.failed > 0 ? 1 : 0;
}

/**
 * The p50 and p99 of the live view: each a sort of every sample since the start, so worked
 * out again at most once a second, and at once when there were none and samples came since.
 */
class LivePercentiles {
  readonly #samples: Latencies;
  #at = Number.NEGATIVE_INFINITY;
  #values: [number | undefined, number | undefined] = [undefined, undefined];

  constructor(samples: Latencies) {
    this.#samples = samples;
  }

  /** p50 and p99 in ms; `fresh` works them out whenever they were last. */
  get(fresh: boolean): [number | undefined, number | undefined] {
    const now = performance.now();
    if (fresh || now - this.#at >= 1000 || (this.#values[0] === undefined && this.#samples.count > 0)) {
      this.#values = [this.#samples.quantile(0.5), this.#samples.quantile(0.99)];
      this.#at = now;
    }
    return this.#values;
  }
}

/** One run: its runners, the tally, the live view and --ndjson, Ctrl-C. */
class HoldRun {
  readonly #o: HoldOptions;
  readonly #runners: Runner[];
  readonly #tally: Tally;
  readonly #connectPercentiles: LivePercentiles;
  readonly #rttPercentiles: LivePercentiles;
  readonly #human: NodeJS.WriteStream;
  readonly #view: ProgressView;
  readonly #started = performance.now();
  #phase: Progress['phase'] = 'opening';
  #holdUntil: number | undefined;
  #interrupts = 0;
  #wake: () => void = () => {};

  readonly #disjoint: boolean;

  constructor(options: HoldOptions, runners: Runner[], human: NodeJS.WriteStream, disjoint: boolean) {
    this.#o = options;
    this.#runners = runners;
    this.#disjoint = disjoint;
    this.#tally = new Tally(runners, disjoint, options.ndjson);
    this.#connectPercentiles = new LivePercentiles(this.#tally.latencies);
    this.#rttPercentiles = new LivePercentiles(this.#tally.rtts);
    this.#human = human;
    this.#view = human.isTTY ? terminalView(human) : plainView(human);
  }

  #onSignal = (): void => {
    this.#interrupts += 1;
    if (this.#interrupts > 1) process.exit(130);
    for (const r of this.#runners) r.stop();
    this.#wake();
  };

  get interrupted(): boolean {
    return this.#interrupts > 0;
  }

  /** What the view shows; `final`: the last frame, its percentiles worked out afresh. */
  progress(final = false): Progress {
    const t = this.#tally;
    const c = t.counts;
    const [p50Ms, p99Ms] = this.#connectPercentiles.get(final);
    const now = performance.timeOrigin + performance.now();
    const since = c.firstStartWall ?? now;
    const window = (this.#phase === 'opening' ? now : (c.lastSettledWall ?? now)) - since;
    return {
      phase: this.#phase,
      total: this.#o.count,
      opened: c.opened,
      failed: c.failed,
      errors: c.errors,
      dropped: c.dropped,
      open: c.held,
      ratePerSec: window > 0 ? (c.initialOpened * 1000) / window : 0,
      p50Ms,
      p99Ms,
      elapsedMs: performance.now() - this.#started,
      ...(this.#holdUntil !== undefined
        ? { holdLeftSec: Math.max(0, (this.#holdUntil - performance.now()) / 1000) }
        : {}),
      pools: t.pools,
      otherPools: t.others.pools,
      ...(this.#o.lifetime !== undefined ? { churned: c.churned } : {}),
      ...(this.#o.message !== undefined ? { messages: this.#messages(final) } : {}),
    };
  }

  #messages(final: boolean): NonNullable<Progress['messages']> {
    const c = this.#tally.counts;
    const [rttP50Ms, rttP99Ms] = this.#rttPercentiles.get(final);
    return { sent: c.messagesSent, received: c.messagesReceived, rttP50Ms, rttP99Ms };
  }

  /** One --ndjson line: the second since the last one. */
  #second(): string {
    const t = this.#tally;
    t.collect();
    const c = t.counts;
    const s = t.takeSecond();
    const line: Record<string, unknown> = {
      elapsed_s: Math.round((performance.now() - this.#started) / 100) / 10,
      phase: this.#phase,
      opened: c.opened,
      failed: c.failed,
      held: c.held,
      rate_per_sec: s.seconds > 0 ? Math.round((s.opened / s.seconds) * 10) / 10 : 0,
      connect_p50_ms: round3(s.latencies.quantile(0.5)),
      connect_p99_ms: round3(s.latencies.quantile(0.99)),
      errors: c.errors,
      dropped: c.dropped,
      aging: t.pools.reduce((n, p) => n + p.aging, 0) + t.others.aging,
    };
    if (this.#o.lifetime !== undefined) line.churned = c.churned;
    if (this.#o.message !== undefined) {
      Object.assign(line, {
        messages_sent: c.messagesSent,
        messages_received: c.messagesReceived,
        rtt_p50_ms: round3(s.rtts.quantile(0.5)),
        rtt_p99_ms: round3(s.rtts.quantile(0.99)),
      });
    }
    return JSON.stringify(line);
  }

  /** Sleeps `ms`, or less if Ctrl-C comes first. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wake = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  async #start(): Promise<string[]> {
    const started = await Promise.allSettled(this.#runners.map((r) => r.start()));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(this.#runners.map((r) => r.close().catch(() => undefined)));
      throw failed.reason;
    }
    return started.flatMap((s) => (s.status === 'fulfilled' && s.value !== null ? [s.value] : []));
  }

  async execute(): Promise<{ code: number; report: HoldReport }> {
    const o = this.#o;
    const urls = await this.#start();
    for (const url of urls) this.#human.write(`porter hold: metrics at ${url} (porter inspect ${url})\n`);
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
    const redraw = (): void => {
      this.#tally.collect(this.#phase === 'closing');
      this.#view.update(this.progress());
    };
    const ticker = setInterval(redraw, this.#human.isTTY ? 100 : 250);
    const seconds = o.ndjson ? setInterval(() => process.stdout.write(`${this.#second()}\n`), 1000) : undefined;
    try {
      let state = mergeStates(await Promise.all(this.#runners.map((r) => r.settled)), this.#disjoint);
      this.#tally.collect();
      const holdStart = performance.now();
      if (!this.interrupted && o.duration > 0 && this.#tally.counts.held + this.#tally.counts.churned > 0) {
        this.#phase = 'holding';
        this.#holdUntil = holdStart + o.duration * 1000;
        await this.#sleep(o.duration * 1000);
      }
      const heldMs = this.#tally.counts.held > 0 || o.duration > 0 ? performance.now() - holdStart : 0;
      this.#holdUntil = undefined;
      redraw();
      this.#phase = 'closing';
      const closingWall = performance.timeOrigin + performance.now();
      this.#view.update(this.progress());
      const before = mergeStates(await Promise.all(this.#runners.map((r) => r.close())), this.#disjoint);
      if (o.lifetime !== undefined) state = before;
      clearInterval(ticker);
      clearInterval(seconds);
      this.#tally.collect(true);
      this.#phase = this.interrupted ? 'interrupted' : 'done';
      this.#view.stop(this.progress(true));
      const failures = this.#runners.flatMap((r) => (r.failure !== undefined ? [r.failure] : []));
      const report = buildReport(this.#tally, {
        options: o,
        state,
        heldMs,
        closingWall,
        interrupted: this.interrupted,
        metricsUrls: urls,
        failures,
      });
      if (o.thresholds.length > 0) report.thresholds = evaluateThresholds(o.thresholds, report);
      return { code: exitCode(report), report };
    } finally {
      clearInterval(ticker);
      clearInterval(seconds);
      process.off('SIGINT', this.#onSignal);
      process.off('SIGTERM', this.#onSignal);
    }
  }
}

/**
 * The range each worker takes a slice of: the run's, in modes hybrid and pool (in mode
 * kernel the kernel picks every port, and no two connections can contend for one).
 * Checks that there is a port for each worker.
 */
function rangeToSplit(options: HoldOptions, spec: WorkerSpec): [number, number] | undefined {
  const probe = makePorter(spec.porter);
  const range = probe.options.portRange;
  probe.close();
  if (options.mode === 'kernel') return undefined;
  const ports = range[1] - range[0] + 1;
  if (options.workers > ports) {
    throw new UsageError(
      UsageCodes.INVALID_ARG_VALUE,
      '--workers',
      `--workers ${options.workers}: each worker takes a slice of the range, which has ${ports} ports`,
      `pass --workers ${ports} or fewer, or a wider --range`,
    );
  }
  return range;
}

/** Runs `porter hold`; resolves to the exit code and the report. */
export async function runHold(options: HoldOptions): Promise<{ code: number; report: HoldReport }> {
  const human = options.json || options.ndjson ? process.stderr : process.stdout;
  const spec = specOf(options);
  // A mode this host cannot honour, and a count that cannot fit, are refused before anything opens.
  const local = options.workers > 1 ? undefined : new LocalRunner(spec);
  const range = local === undefined ? rangeToSplit(options, spec) : undefined;
  const raisedFrom = ensureDescriptors(Math.ceil(options.count / options.workers), options.count, options.workers);
  if (raisedFrom !== undefined) {
    human.write(
      `porter hold: raised the open-file soft limit from ${raisedFrom.toLocaleString('en-US')} to the hard limit\n`,
    );
  }
  const runners = local !== undefined ? [local] : childRunners(spec, options.workers, options.count, range);
  const run = new HoldRun(options, runners, human, range !== undefined);
  const { code, report } = await run.execute();
  human.write(`\n${formatHoldReport(report, wantsColor(human))}\n`);
  if (options.json || options.ndjson) process.stdout.write(`${JSON.stringify(report)}\n`);
  return { code, report };
}
