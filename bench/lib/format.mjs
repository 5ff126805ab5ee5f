/**
 * Formatting shared by the benchmarks' sections of docs/benchmarks.md: numbers with their
 * unit, markdown tables, and the note of a section that was not measured.
 */

export const num = (v) => typeof v === 'number' && Number.isFinite(v);
/** `v` when it is a finite number, else null: a figure of a run's summary. */
export const finiteOrNull = (v) => (num(v) ? v : null);

export function fmtRate(v) {
  if (!num(v)) return 'n/a';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k/s`;
  return `${v.toFixed(0)} /s`;
}
export const fmtRatio = (v) => (num(v) ? `${v.toFixed(2)}x` : 'n/a');
export const fmtUs = (v, digits = 0) => (num(v) ? `${v.toFixed(digits)} us` : 'n/a');
export const fmtMs = (v, d = 3) => (num(v) ? `${v.toFixed(d)} ms` : 'n/a');
export const fmtNs = (v) => (num(v) ? `${v.toFixed(1)} ns` : 'n/a');
export const fmtB = (v) => (num(v) ? `${v.toFixed(2)} B` : 'n/a');

/** One table cell: a single line, no column separator. */
const cell = (v) =>
  String(v)
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|');

export function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** Why a section has no figures (not run, skipped, failed), or null when it has them. */
export function missing(section) {
  if (!section) return 'not run';
  return section.missing ?? section.skipped ?? section.error ?? null;
}

/** Error counts by code, as one cell: "ECONNREFUSED 3, ETIMEDOUT 1", or "none". */
export const errorsCell = (errors) =>
  Object.entries(errors ?? {})
    .map(([code, n]) => `${code} ${n}`)
    .join(', ') || 'none';

/** The TCP counters seen during each method's turns, as a table. */
export function countersTable(counters) {
  const names = Object.keys(counters ?? {});
  if (names.length === 0 || names.every((k) => counters[k] === null)) return 'TCP counters: nstat not available.';
  const keys = Object.keys(counters[names.find((k) => counters[k])]);
  return table(
    ['TCP counters during its turns', ...keys],
    names.map((k) => [k, ...keys.map((key) => counters[k]?.[key] ?? 'n/a')]),
  );
}

/** A section's heading, then its lines, or the reason it has none. */
export function section(title, result, render) {
  const why = missing(result);
  return [`## ${title}`, '', ...(why ? [`Not measured: ${why}.`] : render(result)), ''];
}
