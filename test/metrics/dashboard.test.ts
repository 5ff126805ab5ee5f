// The Grafana dashboard (packages/metrics/grafana/porter.json) against a real Prometheus
// scraping a real porter process that holds, churns and fails connections, in a network
// namespace whose ephemeral range is four ports wide (fixtures/dashboard-netns.ts and
// fixtures/churn.ts): every query of every panel is run through Prometheus' HTTP API with
// the variables and $__rate_interval substituted, with every variable at All and with one
// job, one instance and two destinations picked. None may error, each must return numbers,
// and the process must really have produced every series the panels show. The same
// Prometheus loads porter's rules: every recording rule has data, PorterExhausted fires.
import { fileURLToPath } from 'node:url';
import type { Evaluated } from '../helpers/dashboard.js';
import { prometheusPath } from '../helpers/exposition.js';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { ipv6LoopbackMissing, testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import type { Printed } from './fixtures/dashboard-netns.js';

const script = fileURLToPath(new URL('./fixtures/dashboard-netns.ts', import.meta.url));
const binary = prometheusPath();

const missing =
  netnsUnavailableReason() ??
  ipv6LoopbackMissing() ??
  (binary === undefined ? 'prometheus (Debian package prometheus)' : undefined);

/** The query of panel `panel` (its first, or `refId`). */
function panel(results: Evaluated[], title: string, refId = 'A'): Evaluated {
  const found = results.find((q) => q.panel === title && q.refId === refId);
  if (found === undefined) throw new Error(`no panel ${title} ${refId}`);
  return found;
}

const labelsOf = (q: Evaluated, label: string): string[] => q.last.map((s) => s.metric[label] ?? '').sort();
const total = (q: Evaluated): number => q.last[0]?.value ?? Number.NaN;

testIf(missing)(
  'every query of the dashboard returns data from a real porter process through a real Prometheus',
  async (t) => {
    const run = await runInNetns(script, [binary as string], {
      sysctls: { 'net.ipv4.ip_local_port_range': '40000 40003' },
      timeoutMs: 150_000,
    });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Printed>(run.stdout);
    t.log(`${r.queries} queries, data after ${r.polls} polls`);
    t.true(r.queries >= 30, `${r.queries} queries found in the dashboard`);
    t.is(r.all.length, r.queries);
    t.is(r.picked.length, r.queries);

    // No query errors; then each returns numbers, with the variables at All and picked.
    const passes = [
      ['All', r.all],
      ['picked', r.picked],
    ] as const;
    const what = (pass: string, q: Evaluated): string => `${pass}: ${q.panel} ${q.refId}: ${q.expr}`;
    for (const [pass, results] of passes) for (const q of results) t.is(q.error, undefined, what(pass, q));
    for (const [pass, results] of passes) {
      for (const q of results) {
        t.true(q.series > 0 && q.finite > 0, `${what(pass, q)} returned ${q.series} series, ${q.finite} numbers`);
      }
    }

    // The variables list what is there: one job, one instance, the two busiest
    // destinations and the pools summed beyond maxPools.
    t.deepEqual(r.variables['job'], { values: ['porter'] });
    t.deepEqual(r.variables['instance'], { values: [r.target] });
    t.deepEqual(r.variables['remote'], { values: [r.remotes.a, r.remotes.d, 'other'].sort() });

    // Picking destinations selects them (the dots of an IPv4 address and the brackets of
    // an IPv6 one escaped as Grafana does); counters, which have no remote label, stay whole.
    const table = 'Ports per destination and instance, now';
    t.deepEqual(labelsOf(panel(r.all, table), 'remote'), [r.remotes.a, r.remotes.d, 'other'].sort());
    t.deepEqual(labelsOf(panel(r.picked, table), 'remote'), [r.remotes.a, r.remotes.d].sort());
    t.true(total(panel(r.picked, 'Connect errors')) > 0);

    // The process produced every series: errors by code, retries by both codes, kernel
    // picks and fallbacks, exhaustion, aging.
    const codes = labelsOf(panel(r.all, 'Connect errors per second by code'), 'code');
    for (const code of ['ECONNREFUSED', 'ERR_PORTER_EXHAUSTED']) t.true(codes.includes(code), `${code} in ${codes}`);
    t.deepEqual(labelsOf(panel(r.all, 'Retries per second by code'), 'code'), ['EADDRINUSE', 'EADDRNOTAVAIL']);
    t.true((r.retries['EADDRINUSE'] ?? 0) > 0 && (r.retries['EADDRNOTAVAIL'] ?? 0) > 0, JSON.stringify(r.retries));
    const byCode = labelsOf(panel(r.all, 'Connect errors by code'), 'code');
    for (const code of ['ECONNREFUSED', 'ERR_PORTER_EXHAUSTED']) t.true(byCode.includes(code), `${code} in ${byCode}`);
    for (const title of ['Connects', 'Connect errors', 'Exhausted', 'Kernel fallbacks', 'Kernel picks', 'Retries']) {
      t.true(total(panel(r.all, title)) > 0, `${title}: ${total(panel(r.all, title))}`);
    }
    t.is(total(panel(r.all, 'Instances')), 1);
    t.is(total(panel(r.all, 'Pools')), 4, 'A, B, D and the refused port');
    const share = total(panel(r.all, 'Share of capacity in use'));
    t.true(share >= 0 && share <= 2, `share ${share}`);
    t.true(
      panel(r.all, 'Kernel picks and fallbacks per second', 'B').last.some((s) => s.value > 0),
      'fallbacks per second',
    );
    const p99 = panel(r.all, 'Connect latency', 'C').last[0]?.value ?? Number.NaN;
    t.true(p99 > 0 && p99 <= 10, `p99 ${p99}`);

    // porter's rules on the same data.
    for (const [record, series] of Object.entries(r.records)) t.true(series > 0, `${record}: ${series} series`);
    t.true(Object.keys(r.records).length >= 8);
    t.true(
      r.alerts.some((a) => a.name === 'PorterExhausted' && a.state === 'firing'),
      JSON.stringify(r.alerts),
    );
  },
);
