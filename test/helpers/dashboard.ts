/**
 * porter's Grafana dashboard (packages/metrics/grafana/porter.json) as a test sees it:
 * every query of its panels, its template variables, and the queries run through a real
 * Prometheus' HTTP API the way Grafana runs them (variables and `$__rate_interval`
 * substituted, multi-value variables formatted as Grafana's Prometheus data source does).
 */
import { readFileSync } from 'node:fs';
import { type ApiAnswer, api, instant, type PromSample, type PromSeries, range } from './prometheus.js';

export const DASHBOARD = new URL('../../packages/metrics/grafana/porter.json', import.meta.url);

interface Target {
  expr?: string;
  refId?: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
}

interface PanelJson {
  type: string;
  title?: string;
  targets?: Target[];
  panels?: PanelJson[];
}

/** One query of a panel. */
export interface DashboardQuery {
  panel: string;
  type: string;
  refId: string;
  expr: string;
  instant: boolean;
}

/** One template variable: its name and, for a query variable, its `label_values()` query. */
export interface DashboardVariable {
  name: string;
  type: string;
  query?: string;
  allValue?: string;
  multi?: boolean;
}

export interface Dashboard {
  queries: DashboardQuery[];
  variables: DashboardVariable[];
}

/** Reads the committed dashboard: its queries (rows' panels included) and variables. */
export function loadDashboard(file: URL = DASHBOARD): Dashboard {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    panels: PanelJson[];
    templating: { list: (Omit<DashboardVariable, 'query'> & { query?: string | { query: string } })[] };
  };
  const queries: DashboardQuery[] = [];
  const walk = (panels: PanelJson[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (t.expr === undefined) continue;
        queries.push({
          panel: p.title ?? '',
          type: p.type,
          refId: t.refId ?? '',
          expr: t.expr,
          instant: t.instant === true && t.range !== true,
        });
      }
      walk(p.panels ?? []);
    }
  };
  walk(json.panels);
  const variables = json.templating.list.map((v) => ({
    name: v.name,
    type: v.type,
    query: typeof v.query === 'object' ? v.query.query : v.query,
    allValue: v.allValue,
    multi: v.multi,
  }));
  return { queries, variables };
}

/**
 * A value as Grafana's Prometheus data source puts a multi-value or include-All variable
 * into a query: regex characters escaped (twice, for the PromQL string), several values
 * as `(a|b)`.
 */
export function grafanaRegex(values: string[]): string {
  const escaped = values.map((v) => v.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&'));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/**
 * `expr` with `$__rate_interval` and `$name` / `${name}` replaced; throws if a `$` is
 * left (a variable the test does not know).
 */
export function substitute(expr: string, vars: Record<string, string>, rateInterval: string): string {
  let out = expr.replaceAll('$__rate_interval', rateInterval);
  for (const [name, value] of Object.entries(vars)) {
    out = out.replaceAll(`\${${name}}`, value).replace(new RegExp(`\\$${name}\\b`, 'g'), () => value);
  }
  if (out.includes('$')) throw new Error(`unknown variable left in ${out}`);
  return out;
}

/** What one query answered. */
export interface Evaluated {
  panel: string;
  refId: string;
  expr: string;
  error?: string;
  /** Series (or instant samples) returned. */
  series: number;
  /** Values that are numbers (not NaN, not infinite). */
  finite: number;
  /** The last value of each series, by its labels. */
  last: { metric: Record<string, string>; value: number }[];
}

/**
 * Runs every query of the dashboard with `vars`: range queries over [end - 20 s, end]
 * every second (as a panel does), instant ones at `end`.
 */
export async function evaluateDashboard(
  base: string,
  dashboard: Dashboard,
  vars: Record<string, string>,
  rateInterval: string,
  end: number,
): Promise<Evaluated[]> {
  const out: Evaluated[] = [];
  for (const q of dashboard.queries) {
    const expr = substitute(q.expr, vars, rateInterval);
    const base0 = { panel: q.panel, refId: q.refId, expr };
    if (q.instant) {
      const a: ApiAnswer<{ result: PromSample[] }> = await instant(base, expr, end);
      if (!a.ok) {
        out.push({ ...base0, error: a.error, series: 0, finite: 0, last: [] });
        continue;
      }
      const values = a.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
      out.push({
        ...base0,
        series: values.length,
        finite: values.filter((v) => Number.isFinite(v.value)).length,
        last: values,
      });
    } else {
      const a: ApiAnswer<{ result: PromSeries[] }> = await range(base, expr, end - 20, end, 1);
      if (!a.ok) {
        out.push({ ...base0, error: a.error, series: 0, finite: 0, last: [] });
        continue;
      }
      const all = a.data.result.flatMap((s) => s.values.map((v) => Number(v[1])));
      out.push({
        ...base0,
        series: a.data.result.length,
        finite: all.filter((v) => Number.isFinite(v)).length,
        last: a.data.result.map((s) => ({ metric: s.metric, value: Number(s.values.at(-1)?.[1]) })),
      });
    }
  }
  return out;
}

/**
 * The values of a `label_values(selector, label)` variable query, as Grafana asks
 * Prometheus for them (`/api/v1/label/<label>/values?match[]=<selector>`).
 */
export async function variableValues(
  base: string,
  query: string,
  vars: Record<string, string>,
): Promise<ApiAnswer<string[]>> {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(substitute(query, vars, ''));
  if (m === null) return { ok: false, error: `not a label_values() query: ${query}` };
  return api<string[]>(base, `/label/${m[2]}/values`, { 'match[]': m[1]! });
}
