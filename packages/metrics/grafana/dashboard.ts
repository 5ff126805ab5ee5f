/**
 * porter's Grafana dashboard, built with the Grafana Foundation SDK. `npm run dashboard`
 * (in packages/metrics) writes it to grafana/porter.json, the file users import; a check
 * in scripts/test.sh fails when the committed file is not what this source builds.
 *
 * Every query reads @porter/metrics' series (default prefix `porter_`) straight, not the
 * recording rules, so the dashboard works without them. The variables `job`, `instance`
 * and `remote` select with `=~"$var"` (All is `.*`); `remote` only where the series has
 * that label (the pool gauges), so counters stay whole when a destination is picked. The
 * "since each process started" totals are the sums of the counters of the selected
 * instances: for a fleet of `porter hold` runs (an Indexed Job), the run's totals.
 */
import { PanelBuilder as BarGaugeBuilder } from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  type DataTransformerConfig,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import { PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import type { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import type { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { datasource, POOL, PROCESS, RATE, rate, refId, stat, target, timeseries } from './panels.js';

/** The fleet's totals: the sums over every selected instance. */
function fleetRow(): (BarGaugeBuilder | StatBuilder | TimeseriesBuilder)[] {
  const since = 'since each process started (the sum of their counters)';
  const total = (title: string, expr: string, description: string, steps?: [number, string][]) =>
    stat({ title, description, unit: 'short', queries: [{ expr }], thresholds: steps });
  return [
    stat({
      title: 'Instances',
      description: 'Processes exporting porter metrics among the selected jobs and instances.',
      unit: 'short',
      queries: [{ expr: `count(count by (job, instance) (porter_pools${PROCESS}))` }],
    }),
    total(
      'Ports in use',
      `sum(porter_ports_in_use${POOL})`,
      'Local ports held by a lease now, summed over every pool.',
    ),
    total('Ports aging', `sum(porter_ports_aging${POOL})`, 'Local ports resting after this side closed first.'),
    total('Ports free', `sum(porter_ports_free${POOL})`, 'Local ports that can be handed out now, summed.'),
    stat({
      title: 'Share of capacity in use',
      description: 'Ports in use over what porter can give the selected destinations (their capacity, summed).',
      unit: 'percentunit',
      queries: [{ expr: `sum(porter_ports_in_use${POOL}) / sum(porter_ports_capacity${POOL} > 0)` }],
      thresholds: [
        [0.8, 'orange'],
        [0.9, 'red'],
      ],
    }),
    total('Pools', `sum(porter_pools${PROCESS})`, 'Pools porter tracks: one per destination and local address.'),
    total('Connects', `sum(porter_connect_duration_seconds_count${PROCESS})`, `Successful connects ${since}.`),
    total('Connect errors', `sum(porter_connect_errors_total${PROCESS})`, `Failed connects, every code, ${since}.`, [
      [1, 'orange'],
    ]),
    total('Exhausted', `sum(porter_exhausted_total${PROCESS})`, `ERR_PORTER_EXHAUSTED ${since}.`, [[1, 'red']]),
    total(
      'Kernel fallbacks',
      `sum(porter_kernel_fallbacks_total${PROCESS})`,
      `Ports from the kernel fallback ${since}.`,
      [[1, 'orange']],
    ),
    total('Kernel picks', `sum(porter_kernel_picks_total${PROCESS})`, `Ports the kernel chose in its window ${since}.`),
    total('Retries', `sum(porter_retries_total${PROCESS})`, `Connects retried on another port ${since}.`),
    timeseries({
      title: 'Ports in use per instance',
      description: 'Stacked: the top of the stack is the fleet total.',
      unit: 'short',
      width: 16,
      stacked: true,
      queries: [{ expr: `sum by (instance) (porter_ports_in_use${POOL})`, legend: '{{instance}}' }],
    }),
    new BarGaugeBuilder()
      .title('Connect errors by code')
      .description(`Failed connects by error code ${since}.`)
      .datasource(datasource)
      .unit('short')
      .span(8)
      .height(8)
      .orientation(common.VizOrientation.Horizontal)
      .displayMode(common.BarGaugeDisplayMode.Basic)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
      .withTarget(
        target(
          { expr: `sum by (code) (porter_connect_errors_total${PROCESS})`, legend: '{{code}}', instant: true },
          'A',
        ),
      ),
  ];
}

/** Ports per destination and instance: in use, aging, free, their share of the capacity. */
function portsRow(): (TableBuilder | TimeseriesBuilder)[] {
  const by = 'sum by (instance, remote)';
  const perPool = (gauge: string, what: string): TimeseriesBuilder =>
    timeseries({
      title: `Ports ${what} per destination and instance`,
      description: `porter_ports_${gauge}: ${what}, per destination (remote="other" sums the pools beyond maxPools) and instance, local addresses summed.`,
      unit: 'short',
      width: 8,
      queries: [{ expr: `${by} (porter_ports_${gauge}${POOL})`, legend: '{{instance}} {{remote}}' }],
    });
  const organize: DataTransformerConfig = {
    id: 'organize',
    options: {
      excludeByName: { Time: true },
      renameByName: { 'Value #A': 'in use', 'Value #B': 'aging', 'Value #C': 'free', 'Value #D': 'capacity' },
    },
  };
  const table = new TableBuilder()
    .title('Ports per destination and instance, now')
    .description('Capacity: what porter can give the destination (its range, the kernel window included).')
    .datasource(datasource)
    .span(24)
    .height(8)
    .targets(
      ['in_use', 'aging', 'free', 'capacity'].map((g, i) =>
        target({ expr: `${by} (porter_ports_${g}${POOL})`, instant: true, table: true }, refId(i)),
      ),
    )
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation(organize);
  return [
    table,
    perPool('in_use', 'in use'),
    perPool('aging', 'aging'),
    perPool('free', 'free'),
    timeseries({
      title: 'Share of capacity per destination',
      description:
        'In use: over 1 when the kernel fallback gave ports beyond the range. Free: what can still be handed out (PorterPortsLow fires under 10 %).',
      unit: 'percentunit',
      queries: [
        {
          expr: `${by} (porter_ports_in_use${POOL}) / ${by} (porter_ports_capacity${POOL} > 0)`,
          legend: '{{instance}} {{remote}} in use',
        },
        {
          expr: `${by} (porter_ports_free${POOL}) / ${by} (porter_ports_capacity${POOL} > 0)`,
          legend: '{{instance}} {{remote}} free',
        },
      ],
      thresholds: [[0.9, 'red']],
    }),
    timeseries({
      title: 'Free ports in 30 minutes (forecast)',
      description:
        'The free ports of each destination extrapolated 30 minutes from the last 15 (predict_linear), as PorterPortsExhaustionForecast reads them; at or under 0, it fires.',
      unit: 'short',
      queries: [
        { expr: `${by} (predict_linear(porter_ports_free${POOL}[15m], 1800))`, legend: '{{instance}} {{remote}}' },
      ],
    }),
  ];
}

/** Allocations, connects, their latency and their errors. */
function connectsRow(): (heatmap.PanelBuilder | TimeseriesBuilder)[] {
  const buckets = `sum by (le) (rate(porter_connect_duration_seconds_bucket${PROCESS}${RATE}))`;
  const quantile = (q: number) => ({ expr: `histogram_quantile(${q}, ${buckets})`, legend: `p${q * 100}` });
  return [
    timeseries({
      title: 'Allocations and releases per second',
      description: 'Ports handed out, and given back: aging (this side closed first) or immediate.',
      unit: 'ops',
      queries: [
        { expr: `sum by (instance) (${rate('porter_allocations_total')})`, legend: '{{instance}} allocations' },
        {
          expr: `sum by (instance, mode) (${rate('porter_releases_total')})`,
          legend: '{{instance}} releases {{mode}}',
        },
      ],
    }),
    timeseries({
      title: 'Connects per second',
      description: 'Successful and failed connects.',
      unit: 'ops',
      queries: [
        {
          expr: `sum by (instance) (${rate('porter_connect_duration_seconds_count')})`,
          legend: '{{instance}} connected',
        },
        { expr: `sum by (instance) (${rate('porter_connect_errors_total')})`, legend: '{{instance}} failed' },
      ],
    }),
    timeseries({
      title: 'Connect latency',
      description:
        'Quantiles of porter_connect_duration_seconds over the selected instances: from taking a port to connected.',
      unit: 's',
      queries: [quantile(0.5), quantile(0.9), quantile(0.99)],
    }),
    timeseries({
      title: 'Connect latency p99 per instance',
      description: 'The 99th percentile of each instance.',
      unit: 's',
      queries: [
        {
          expr: `histogram_quantile(0.99, sum by (instance, le) (rate(porter_connect_duration_seconds_bucket${PROCESS}${RATE})))`,
          legend: '{{instance}}',
        },
      ],
    }),
    new heatmap.PanelBuilder()
      .title('Connect latency distribution')
      .description(
        'Connects per latency bucket in each interval, over the selected instances (upper bounds in seconds).',
      )
      .datasource(datasource)
      .span(24)
      .height(8)
      .calculate(false)
      .yAxis(new heatmap.YAxisConfigBuilder().unit('s'))
      .withTarget(
        target(
          {
            expr: `sum by (le) (increase(porter_connect_duration_seconds_bucket${PROCESS}${RATE}))`,
            legend: '{{le}}',
          },
          'A',
        ).format(PromQueryFormat.Heatmap),
      ),
    timeseries({
      title: 'Connect errors per second by code',
      description:
        'ECONNREFUSED, ETIMEDOUT, ERR_PORTER_EXHAUSTED, ABORT_ERR, ... (PorterConnectErrors fires over 1/s).',
      unit: 'ops',
      queries: [{ expr: `sum by (code) (${rate('porter_connect_errors_total')})`, legend: '{{code}}' }],
    }),
    timeseries({
      title: 'Share of connects that fail',
      description: 'Failed connects over all connects, per instance.',
      unit: 'percentunit',
      queries: [
        {
          expr: `sum by (instance) (${rate('porter_connect_errors_total')}) / (sum by (instance) (${rate('porter_connect_errors_total')}) + sum by (instance) (${rate('porter_connect_duration_seconds_count')}))`,
          legend: '{{instance}}',
        },
      ],
    }),
  ];
}

/** Retries, the kernel's picks and fallbacks, exhaustion, pools. */
function kernelRow(): TimeseriesBuilder[] {
  return [
    timeseries({
      title: 'Retries per second by code',
      description: 'EADDRINUSE: another socket holds the port; EADDRNOTAVAIL: the 4-tuple is taken (TIME_WAIT).',
      unit: 'ops',
      queries: [{ expr: `sum by (code) (${rate('porter_retries_total')})`, legend: '{{code}}' }],
    }),
    timeseries({
      title: 'Kernel picks and fallbacks per second',
      description:
        "Picks: ports the kernel chose in its window of porter's range (mode hybrid). Fallbacks: ports it chose outside the range when porter had none left.",
      unit: 'ops',
      queries: [
        { expr: `sum by (instance) (${rate('porter_kernel_picks_total')})`, legend: '{{instance}} picks' },
        { expr: `sum by (instance) (${rate('porter_kernel_fallbacks_total')})`, legend: '{{instance}} fallbacks' },
      ],
    }),
    timeseries({
      title: 'ERR_PORTER_EXHAUSTED per second',
      description: 'connect() or allocate() found no port for the destination and no fallback (PorterExhausted fires).',
      unit: 'ops',
      queries: [{ expr: `sum by (instance) (${rate('porter_exhausted_total')})`, legend: '{{instance}}' }],
      thresholds: [[0.000001, 'red']],
    }),
    timeseries({
      title: 'Pools per instance',
      description:
        'Pools porter tracks (one per destination and local address), and the pools with series of their own.',
      unit: 'short',
      queries: [
        { expr: `sum by (instance) (porter_pools${PROCESS})`, legend: '{{instance}} pools' },
        { expr: `count by (instance) (porter_ports_in_use${POOL})`, legend: '{{instance}} series' },
      ],
    }),
  ];
}

function variable(name: string, label: string, query: string): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(datasource)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*');
}

/** The label_values() queries of the variables, in order. */
export const VARIABLES = {
  job: 'label_values(porter_pools, job)',
  instance: 'label_values(porter_pools{job=~"$job"}, instance)',
  remote: 'label_values(porter_ports_in_use{job=~"$job", instance=~"$instance"}, remote)',
} as const;

/** The dashboard, as Grafana's JSON model. */
export function porterDashboard(): object {
  const builder = new DashboardBuilder('porter')
    .uid('porter')
    .description(
      'porter: local ports per destination, connects, errors, retries and the kernel, per instance and summed over a fleet.',
    )
    .tags(['porter', 'prometheus'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(variable('job', 'job', VARIABLES.job))
    .withVariable(variable('instance', 'instance', VARIABLES.instance))
    .withVariable(variable('remote', 'destination', VARIABLES.remote));
  const rows: [string, { build(): unknown }[]][] = [
    ['Fleet', fleetRow()],
    ['Ports per destination', portsRow()],
    ['Connects', connectsRow()],
    ['Retries, the kernel, pools', kernelRow()],
  ];
  for (const [title, panels] of rows) {
    builder.withRow(new RowBuilder(title));
    for (const panel of panels) builder.withPanel(panel as StatBuilder);
  }
  return builder.build();
}
