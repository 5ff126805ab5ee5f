/**
 * The pieces porter's dashboard is made of (dashboard.ts): the data source, the series
 * selectors with the template variables, and panel builders with the dashboard's
 * defaults (legends as tables, thresholds, stacking).
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import { ThresholdsConfigBuilder, ThresholdsMode } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
export const datasource = { type: 'prometheus', uid: '${datasource}' };

/** Selector of a process's series (counters, the histogram, `porter_pools`). */
export const PROCESS = '{job=~"$job", instance=~"$instance"}';
/** Selector of a pool's series (the `porter_ports_*` gauges). */
export const POOL = '{job=~"$job", instance=~"$instance", remote=~"$remote"}';
export const RATE = '[$__rate_interval]';

export const rate = (metric: string): string => `rate(${metric}${PROCESS}${RATE})`;

export interface Query {
  expr: string;
  legend?: string;
  instant?: boolean;
  table?: boolean;
}

export function target({ expr, legend, instant, table }: Query, refId: string): DataqueryBuilder {
  const q = new DataqueryBuilder().datasource(datasource).expr(expr).refId(refId);
  if (legend !== undefined) q.legendFormat(legend);
  if (instant === true) q.instant();
  else q.range();
  if (table === true) q.format(PromQueryFormat.Table);
  return q;
}

export const refId = (i: number): string => String.fromCharCode(65 + i);

export interface Panel {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  width?: number;
  height?: number;
  stacked?: boolean;
  max?: number;
  thresholds?: [number, string][];
}

export function thresholds(steps: [number, string][] | undefined): ThresholdsConfigBuilder {
  const all = [
    { value: null as unknown as number, color: 'green' },
    ...(steps ?? []).map(([value, color]) => ({ value, color })),
  ];
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(all);
}

export function timeseries(p: Panel): TimeseriesBuilder {
  const panel = new TimeseriesBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(datasource)
    .unit(p.unit)
    .min(0)
    .span(p.width ?? 12)
    .height(p.height ?? 8)
    .fillOpacity(p.stacked === true ? 30 : 10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Bottom)
        .calcs(['lastNotNull', 'max']),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending),
    )
    .targets(p.queries.map((q, i) => target(q, refId(i))));
  if (p.stacked === true) panel.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (p.max !== undefined) panel.max(p.max);
  if (p.thresholds !== undefined) {
    panel
      .thresholds(thresholds(p.thresholds))
      .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  }
  return panel;
}

export function stat(p: Panel): StatBuilder {
  return new StatBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(datasource)
    .unit(p.unit)
    .span(p.width ?? 4)
    .height(p.height ?? 4)
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
    .thresholds(thresholds(p.thresholds))
    .targets(p.queries.map((q, i) => target({ ...q, instant: false }, refId(i))));
}
