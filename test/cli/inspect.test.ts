import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { InspectState } from '@porter/cli';
import type { PoolSnapshot, PorterStats } from '@porter/core';
import test, { type ExecutionContext } from 'ava';
import { porter } from '../helpers/cli.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';
import { startServers } from '../helpers/servers.mjs';

const fixture = fileURLToPath(new URL('./fixtures/metrics-process.mjs', import.meta.url));

interface Served {
  url: string;
  snapshot: PoolSnapshot[];
  stats: PorterStats;
}

type State = InspectState;

/** Starts the fixture process; it is stopped at the test's teardown. */
async function metricsProcess(t: ExecutionContext): Promise<Served> {
  const range = await findFreePortBlock(100);
  const child = spawn(process.execPath, [fixture, `${range[0]}-${range[1]}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.stdin.end();
      await once(child, 'exit');
    }
  });
  let out = '';
  for await (const chunk of child.stdout) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  return JSON.parse(out) as Served;
}

const remote = (address: string, port: number): string =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
const byPool = (a: { remote: string; local: string }, b: { remote: string; local: string }): number =>
  `${a.remote} ${a.local}`.localeCompare(`${b.remote} ${b.local}`);

test("inspect --json reads a process's @porter/metrics and matches its snapshot() and stats()", async (t) => {
  const served = await metricsProcess(t);
  const run = await porter(['inspect', served.url, '--json']);
  t.is(run.code, 0, run.stderr);
  const state = lastJson<State>(run.stdout);
  t.is(state.url, served.url);

  const expected = served.snapshot
    .map((p) => ({
      remote: remote(p.remoteAddress, p.remotePort),
      local: p.localAddress,
      in_use: p.inUse.length,
      aging: p.aging.length,
      free: p.free,
    }))
    .sort(byPool);
  t.true(expected.length === 4, 'two servers, the refused port and an allocation to [::1]:443');
  t.deepEqual([...state.pools].sort(byPool), expected);

  const s = served.stats;
  t.deepEqual(state.counters, {
    pools: s.pools,
    allocations: s.allocations,
    releases: s.releases,
    retries: s.retries,
    exhausted: s.exhausted,
    kernel_fallbacks: s.kernelFallbacks,
    kernel_picks: s.kernelPicks,
    connect_errors: s.connectErrors,
  });
  t.deepEqual(s.connectErrors, { ECONNREFUSED: 1 });
  t.is(state.connect_duration.count, s.connectDuration.count);
  t.is(state.connect_duration.count, 13);
  t.true(Math.abs(state.connect_duration.sum_seconds - s.connectDuration.sumSeconds) < 1e-9);
  t.deepEqual(
    state.connect_duration.buckets.map((b) => b.le),
    [...s.connectDuration.bounds, '+Inf'],
  );
  t.deepEqual(
    state.connect_duration.buckets.slice(0, -1).map((b) => b.count),
    s.connectDuration.counts,
  );

  // The same for people: the pools table, the counters and the histogram.
  const text = await porter(['inspect', served.url]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /4 pools, 11 ports in use, 3 aging/);
  t.regex(text.stdout, /connect errors\s+│ 1 \(ECONNREFUSED 1\)/);
  t.regex(text.stdout, /Connect latency/);
});

test('inspect --watch --json prints the state at every read, until SIGINT', async (t) => {
  const served = await metricsProcess(t);
  const run = await porter(['inspect', served.url, '--watch', '--interval', '0.2', '--json'], {
    onSpawn(child) {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 3) child.kill('SIGINT');
      });
    },
  });
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.true(lines.length >= 3);
  for (const line of lines) t.is((JSON.parse(line) as State).counters.allocations, served.stats.allocations);
});

test('inspect: an endpoint that cannot be read exits 1, a bad URL 2', async (t) => {
  const closed = await porter(['inspect', `http://127.0.0.1:${await freePort()}/metrics`, '--json']);
  t.is(closed.code, 1);
  t.is(lastJson<{ error: { code: string } }>(closed.stdout).error.code, 'ECONNREFUSED');
  t.regex(closed.stderr, /cannot read .*ECONNREFUSED/);

  const other = createServer((req, res) => {
    if (req.url === '/metrics') res.end('# TYPE something_else counter\nsomething_else_total 3\n');
    else res.writeHead(404).end();
  });
  other.listen(0, '127.0.0.1');
  await once(other, 'listening');
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  const base = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  const missing = await porter(['inspect', `${base}/metrics`, '--json']);
  t.is(missing.code, 1);
  t.is(lastJson<{ error: { code: string } }>(missing.stdout).error.code, 'ERR_PORTER_METRICS_MISSING');
  const notFound = await porter(['inspect', `${base}/nope`]);
  t.is(notFound.code, 1);
  t.regex(notFound.stderr, /answered 404/);

  const bad = await porter(['inspect', 'localhost:9464', '--json']);
  t.is(bad.code, 2);
  t.like(lastJson<{ error: object }>(bad.stdout).error, { code: 'ERR_INVALID_ARG_VALUE', argument: '<metrics-url>' });
});

test("hold --metrics serves the run's metrics: inspect, run meanwhile, sees its pools", async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(64);
  const target = `127.0.0.1:${servers.ports[0]}`;
  let inspected: Promise<Awaited<ReturnType<typeof porter>>> | undefined;
  const hold = await porter(
    ['hold', target, '-n', '30', '-d', '30', '--range', `${range[0]}-${range[1]}`, '--metrics', '0', '--json'],
    {
      onSpawn(child) {
        let err = '';
        child.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(err)?.[1];
          if (url !== undefined && inspected === undefined && /holding 30/.test(err)) {
            inspected = porter(['inspect', url, '--json']);
            void inspected.finally(() => child.kill('SIGINT'));
          }
        });
      },
    },
  );
  t.is(hold.code, 130, hold.stderr);
  const report = lastJson<{ metrics_url: string; opened: number }>(hold.stdout);
  t.regex(report.metrics_url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  t.is(report.opened, 30);
  if (inspected === undefined) throw new Error('inspect never ran');
  const run = await inspected;
  t.is(run.code, 0, run.stderr);
  const state = lastJson<State>(run.stdout);
  t.deepEqual(state.pools, [{ remote: target, local: '0.0.0.0', in_use: 30, aging: 0, free: 64 - 30 }]);
  t.is(state.counters.allocations, 30);
  t.is(state.connect_duration.count, 30);
});
