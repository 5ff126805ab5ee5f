import type { Socket } from 'node:net';
import { Porter } from '@porter/core';
import { registerPorterMetrics, serveMetrics } from '@porter/metrics';
import { Registry } from 'prom-client';
import { prometheusPath } from '../helpers/exposition.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { type PromSample, startPrometheus, waitFor } from '../helpers/prometheus.js';
import { testIf } from '../helpers/requirements.js';
import { startServers } from '../helpers/servers.mjs';
import { destroyAll, endAndWait } from '../helpers/sockets.js';

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
    const prometheus = await startPrometheus(binary as string, {
      jobs: [{ job: 'porter', targets: [`127.0.0.1:${server.port}`] }],
    });
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
