// The fleet of docs/fleet.md on one machine: four `porter hold` processes in four network
// namespaces (each with its own ip_local_port_range, as each Kubernetes pod has), one
// Prometheus scraping their metrics endpoints over veth pairs (fixtures/fleet-netns.ts).
// The dashboard's fleet totals, evaluated at a moment when every pod held what it opened,
// equal the sums of the four processes' own reports; its per-instance and per-destination
// panels split them the same way; each pod's capacity follows its own namespace's range.
import { fileURLToPath } from 'node:url';
import type { HoldReport } from '@porter/cli';
import type { Evaluated } from '../helpers/dashboard.js';
import { prometheusPath } from '../helpers/exposition.js';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { vethUnavailableReason } from '../helpers/peer-netns.js';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/fleet-netns.ts', import.meta.url));
const binary = prometheusPath();

interface Result {
  at?: number;
  polls: number;
  targets: string[];
  reports: { code: number | null; report?: HoldReport; stdout?: string; stderr?: string }[];
  all?: Evaluated[];
  picked?: Evaluated[];
  capacity?: { ok: boolean; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
}

const missing =
  netnsUnavailableReason() ??
  vethUnavailableReason() ??
  (binary === undefined ? 'prometheus (Debian package prometheus)' : undefined);

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

testIf(missing)(
  "four porter hold processes in four namespaces, one Prometheus: the dashboard's totals are the sums of their reports",
  async (t) => {
    const run = await runInNetns(script, [binary as string], {
      setup: [`ip addr add 10.99.0.1/32 dev lo`],
      timeoutMs: 150_000,
    });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Result>(run.stdout);
    t.log(`settled after ${r.polls} polls`);
    if (r.at === undefined || r.all === undefined || r.picked === undefined) {
      t.fail(
        `Prometheus never saw every connect settle: ${JSON.stringify(r.reports.map((p) => ({ ...p, report: undefined, code: p.code })))}`,
      );
      return;
    }
    const reports = r.reports.map((p, i) => {
      t.is(p.code, 130, `pod ${i + 1} was stopped while holding (SIGTERM): ${p.stdout ?? ''} ${p.stderr ?? ''}`);
      return p.report as HoldReport;
    });
    for (const rep of reports) {
      t.true(rep.interrupted);
      t.is(rep.attempted, rep.count, 'every connect was tried before it was stopped');
      t.is(rep.dropped, 0);
    }
    // The pods did what they were set up for (fixtures/fleet-netns.ts): two with kernel
    // picks, fallbacks and a retry, two with exhaustion and refusals, so that every total
    // is a sum of two shares or more.
    for (const i of [0, 3]) {
      const rep = reports[i]!;
      t.true(rep.kernel_picks > 0 && rep.kernel_fallbacks > 0, JSON.stringify(rep));
      t.true((rep.retries['EADDRINUSE'] ?? 0) >= 1, JSON.stringify(rep.retries));
    }
    t.deepEqual(reports[1]!.errors, { ERR_PORTER_EXHAUSTED: 50, ECONNREFUSED: 150 });
    t.deepEqual(reports[2]!.errors, { ERR_PORTER_EXHAUSTED: 20, ECONNREFUSED: 100 });

    const totals = {
      opened: sum(reports.map((x) => x.opened)),
      failed: sum(reports.map((x) => x.failed)),
      picks: sum(reports.map((x) => x.kernel_picks)),
      fallbacks: sum(reports.map((x) => x.kernel_fallbacks)),
      retries: sum(reports.flatMap((x) => Object.values(x.retries))),
      aging: sum(reports.flatMap((x) => x.pools.map((p) => p.aging))),
      free: sum(reports.flatMap((x) => x.pools.map((p) => p.free))),
      errors: {} as Record<string, number>,
    };
    for (const rep of reports) {
      for (const [code, n] of Object.entries(rep.errors)) totals.errors[code] = (totals.errors[code] ?? 0) + n;
    }
    t.log(JSON.stringify(totals));

    for (const [pass, results] of [
      ['All', r.all],
      ['job picked', r.picked],
    ] as const) {
      const value = (title: string): number => {
        const q = results.find((x) => x.panel === title);
        t.is(q?.error, undefined, `${pass}: ${title}`);
        t.is(q?.last.length, 1, `${pass}: ${title} is one number`);
        return q?.last[0]?.value ?? Number.NaN;
      };
      const byLabel = (title: string, label: string): Record<string, number> =>
        Object.fromEntries((results.find((x) => x.panel === title)?.last ?? []).map((s) => [s.metric[label], s.value]));
      t.is(value('Instances'), 4, pass);
      t.is(value('Ports in use'), totals.opened, `${pass}: every opened connection held at T`);
      t.is(value('Ports aging'), totals.aging, `${pass}: the ports that collided age`);
      t.is(value('Ports free'), totals.free, pass);
      t.is(value('Connects'), totals.opened, pass);
      t.is(value('Connect errors'), totals.failed, pass);
      t.is(value('Exhausted'), totals.errors['ERR_PORTER_EXHAUSTED'] ?? 0, pass);
      t.is(value('Kernel picks'), totals.picks, pass);
      t.is(value('Kernel fallbacks'), totals.fallbacks, pass);
      t.is(value('Retries'), totals.retries, pass);
      t.deepEqual(byLabel('Connect errors by code', 'code'), totals.errors, pass);
      // Split per instance: each pod's own count.
      t.deepEqual(
        byLabel('Ports in use per instance', 'instance'),
        Object.fromEntries(r.targets.map((target, i) => [target, reports[i]!.opened])),
        pass,
      );
      // And per destination: all four held theirs to the one destination.
      const table = results.find((x) => x.panel === 'Ports per destination and instance, now' && x.refId === 'A');
      t.is(
        sum((table?.last ?? []).filter((s) => s.metric['remote'] === '10.99.0.1:7000').map((s) => s.value)),
        totals.opened,
      );
    }

    // Each pod's capacity follows its own namespace's ip_local_port_range: pod 1's range
    // 39500-40499 is 500 ports porter binds plus the kernel's 500 (its ephemeral range
    // starts at 40000), pod 4's 49900-50099 is 100 and 100 (its range starts at 50000);
    // pods 2 and 3 have ranges outside the kernel's: 100 and 80 ports, porter's alone.
    const capacity = Object.fromEntries(
      (r.capacity?.data?.result ?? [])
        .filter((s) => s.metric['remote'] === '10.99.0.1:7000')
        .map((s) => [s.metric['instance'], Number(s.value[1])]),
    );
    t.deepEqual(capacity, {
      [r.targets[0]!]: 1000,
      [r.targets[1]!]: 100,
      [r.targets[2]!]: 80,
      [r.targets[3]!]: 200,
    });
  },
);
