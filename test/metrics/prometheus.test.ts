import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Porter } from '@porter/core';
import { registerPorterMetrics, serveMetrics } from '@porter/metrics';
import { Registry } from 'prom-client';
import { prometheusPath } from '../helpers/exposition.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { testIf } from '../helpers/requirements.js';
import { startServers } from '../helpers/servers.mjs';
import { destroyAll, endAndWait } from '../helpers/sockets.js';
import { delay } from '../helpers/wait.js';

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Starts Prometheus scraping `target` every second; returns its API base and a stop(). */
async function startPrometheus(
  binary: string,
  target: string,
): Promise<{ api: string; stop(): Promise<void>; log(): string }> {
  const dir = mkdtempSync(join(tmpdir(), 'porter-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: porter',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  return {
    api: `http://127.0.0.1:${port}/api/v1`,
    log: () => log,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** Instant query; [] while Prometheus is not up yet. */
async function query(api: string, promql: string): Promise<PromSample[]> {
  try {
    const res = await fetch(`${api}/query?query=${encodeURIComponent(promql)}`);
    if (!res.ok) return [];
    const body = (await res.json()) as { status: string; data: { result: PromSample[] } };
    return body.status === 'success' ? body.data.result : [];
  } catch {
    return [];
  }
}

/** Polls `promql` until `accept` holds for its result, or throws after `timeoutMs`. */
async function waitFor(
  api: string,
  promql: string,
  accept: (r: PromSample[]) => boolean,
  timeoutMs = 30_000,
): Promise<PromSample[]> {
  const deadline = performance.now() + timeoutMs;
  let last: PromSample[] = [];
  while (performance.now() < deadline) {
    last = await query(api, promql);
    if (accept(last)) return last;
    await delay(250);
  }
  throw new Error(`${promql} never matched within ${timeoutMs} ms; last result: ${JSON.stringify(last)}`);
}

const binary = prometheusPath();

testIf(binary === undefined ? 'prometheus (Debian package prometheus)' : undefined)(
  'a real Prometheus scrapes serveMetrics and sees the ports in use',
  async (t) => {
    const echo = await startServers({ mode: 'echo' });
    const [first, last] = await findFreePortBlock(5);
    const porter = new Porter({ portRange: [first, last], kernelFallback: false, agingMs: 60_000 });
    const registry = new Registry();
    registerPorterMetrics({ porter, registry });
    const server = await serveMetrics({ port: 0, registry });
    const prometheus = await startPrometheus(binary as string, `127.0.0.1:${server.port}`);
    const sockets: Socket[] = [];
    t.teardown(async () => {
      await prometheus.stop();
      await server.close();
      await destroyAll(sockets);
      await echo.stop();
    });
    const remote = `127.0.0.1:${echo.ports[0]}`;
    for (let i = 0; i < 3; i++) sockets.push(await porter.connect({ host: '127.0.0.1', port: echo.ports[0]! }));

    const isValue = (value: number) => (r: PromSample[]) => r.length === 1 && Number(r[0]!.value[1]) === value;
    try {
      const inUse = await waitFor(prometheus.api, `porter_ports_in_use{remote="${remote}"}`, isValue(3));
      t.is(inUse[0]!.metric['local'], '0.0.0.0');
      t.is(inUse[0]!.metric['job'], 'porter');
      t.is(inUse[0]!.metric['instance'], `127.0.0.1:${server.port}`);
      await waitFor(prometheus.api, 'porter_connect_duration_seconds_count', isValue(3));
      await waitFor(prometheus.api, 'porter_allocations_total', isValue(3));

      // Live: this side closes one; the next scrapes see 2 in use and 1 aging.
      await endAndWait(sockets.shift()!);
      await waitFor(prometheus.api, `porter_ports_in_use{remote="${remote}"}`, isValue(2));
      await waitFor(prometheus.api, `porter_ports_aging{remote="${remote}"}`, isValue(1));
      await waitFor(prometheus.api, 'sum(porter_releases_total)', isValue(1));
      // The histogram works with histogram_quantile: a loopback connect is under 10 s.
      const q = await waitFor(
        prometheus.api,
        'histogram_quantile(0.99, sum by (le) (porter_connect_duration_seconds_bucket))',
        (r) => r.length === 1,
      );
      const p99 = Number(q[0]!.value[1]);
      t.true(p99 > 0 && p99 <= 10, `p99 ${p99}`);
      // Prometheus itself reports the target up.
      await waitFor(prometheus.api, `up{instance="127.0.0.1:${server.port}"}`, isValue(1));
    } catch (err) {
      t.log(prometheus.log().split('\n').slice(-20).join('\n'));
      throw err;
    }
  },
);
