/**
 * `porter hold --workers <n>`: the run split over n child processes, each with its own
 * open-file limit, Porter and counters. The parent draws the one live view and writes the
 * one result; each child runs a LocalRunner (hold-worker.ts) and reports over IPC (v8
 * serialization: latency samples cross as Float64Arrays). A {@link ChildRunner} is the
 * parent's handle on one child, with the same interface as a LocalRunner.
 *
 * Messages: parent to child `start` (the WorkerSpec), `stop`, `close`; child to parent
 * `started` (metrics URL) or `error`, then `progress` (every 100 ms), `settled` (pools
 * once its first connects settled), `closed` (pools just before closing, after a last
 * `progress`).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { partitionRange } from '@porter/core';
import type { PoolState, Runner, RunnerProgress, WorkerSpec } from './runner.js';
import { type UsageCode, UsageError } from './usage.js';

/** What a child sends. */
export type FromWorker =
  | { type: 'started'; url: string | null }
  | { type: 'error'; error: { name: string; message: string; code?: string; argument?: string; fix?: string } }
  | { type: 'progress'; progress: RunnerProgress }
  | { type: 'settled'; state: PoolState }
  | { type: 'closed'; state: PoolState };

/** What the parent sends. */
export type ToWorker = { type: 'start'; spec: WorkerSpec } | { type: 'stop' } | { type: 'close' };

/** The child's script: dist/hold-worker.js built, src/hold-worker.ts from the sources (with tsx). */
function workerScript(): { script: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const script = self.replace(/workers\.(js|ts)$/, 'hold-worker.$1');
  const fromSource = script.endsWith('.ts') && !process.execArgv.some((a) => a.includes('tsx'));
  return { script, execArgv: fromSource ? [...process.execArgv, '--import', 'tsx'] : process.execArgv };
}

const EMPTY: PoolState = {
  pools: [],
  others: { pools: 0, in_use: 0, aging: 0, free: 0 },
  stats: { kernelPicks: 0, kernelFallbacks: 0, retries: {} },
};

/** One child process running its part of the run. */
export class ChildRunner implements Runner {
  readonly settled: Promise<PoolState>;
  failure: string | undefined;
  #child: ChildProcess | undefined;
  #spec: WorkerSpec;
  #index: number;
  #latest: RunnerProgress | undefined;
  #latencies: Float64Array[] = [];
  #rtts: Float64Array[] = [];
  #lastState: PoolState = EMPTY;
  #onSettled: (s: PoolState) => void = () => {};
  #onClosed: ((s: PoolState) => void) | undefined;
  #exited: Promise<void> | undefined;
  #done = false;

  constructor(spec: WorkerSpec, index: number) {
    this.#spec = spec;
    this.#index = index;
    this.settled = new Promise((resolve) => {
      this.#onSettled = resolve;
    });
  }

  start(): Promise<string | null> {
    const { script, execArgv } = workerScript();
    const child = fork(script, [], {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      child.on('message', (m: FromWorker) => {
        if (m.type === 'started') resolve(m.url);
        else if (m.type === 'error') reject(revive(m.error));
        else this.#message(m);
      });
      child.once('exit', (code, signal) => {
        const why = `worker ${this.#index + 1} (pid ${child.pid}) exited (${signal ?? `code ${code}`}) before the run ended`;
        if (!this.#done) this.failure = why;
        reject(new Error(why));
        this.#onSettled(this.#lastState);
        this.#onClosed?.(this.#lastState);
      });
      child.send({ type: 'start', spec: this.#spec } satisfies ToWorker);
    });
  }

  #message(m: FromWorker): void {
    if (m.type === 'progress') {
      this.#latest = m.progress;
      this.#latencies.push(m.progress.latencies);
      this.#rtts.push(m.progress.rtts);
    } else if (m.type === 'settled') {
      this.#lastState = m.state;
      this.#onSettled(m.state);
    } else if (m.type === 'closed') {
      this.#done = true;
      this.#lastState = m.state;
      const done = this.#onClosed;
      this.#onClosed = undefined;
      done?.(m.state);
    }
  }

  progress(): RunnerProgress | undefined {
    const latest = this.#latest;
    if (latest === undefined) return undefined;
    const out = { ...latest, latencies: concat(this.#latencies), rtts: concat(this.#rtts) };
    this.#latencies = [];
    this.#rtts = [];
    return out;
  }

  #send(message: ToWorker): void {
    const child = this.#child;
    if (child?.connected) child.send(message);
  }

  stop(): void {
    this.#send({ type: 'stop' });
  }

  async close(): Promise<PoolState> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return this.#lastState;
    const closed = new Promise<PoolState>((resolve) => {
      this.#onClosed = resolve;
    });
    this.#send({ type: 'close' });
    const state = await closed;
    await this.#exited;
    return state;
  }
}

function concat(parts: Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0] as Float64Array;
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An error from a child, as the parent rethrows it (a usage error stays one: exit 2). */
function revive(e: { name: string; message: string; code?: string; argument?: string; fix?: string }): Error {
  if (e.name === 'UsageError') return new UsageError(e.code as UsageCode, e.argument ?? '', e.message, e.fix ?? '');
  return Object.assign(new Error(e.message), { code: e.code });
}

/**
 * The runners of n workers; worker i takes connections i, i + n, i + 2n, ... of the run
 * and, given `range`, the i-th equal slice of it (partitionRange of @porter/core), so that
 * the workers never contend for a port: without it, a port one worker binds towards a
 * destination another already holds fails its connect (EADDRNOTAVAIL) before the retry.
 */
export function childRunners(
  spec: WorkerSpec,
  workers: number,
  count: number,
  range: [number, number] | undefined,
): ChildRunner[] {
  return Array.from({ length: workers }, (_, i) => {
    const porter = range === undefined ? spec.porter : { ...spec.porter, portRange: partitionRange(range, i, workers) };
    const metrics =
      spec.metrics === undefined
        ? undefined
        : { host: spec.metrics.host, port: spec.metrics.port === 0 ? 0 : spec.metrics.port + i };
    const share = Math.floor(count / workers) + (i < count % workers ? 1 : 0);
    const concurrency = Math.max(1, Math.ceil(spec.engine.concurrency / workers));
    return new ChildRunner(
      { ...spec, porter, metrics, engine: { ...spec.engine, count: share, concurrency, offset: i, stride: workers } },
      i,
    );
  });
}
