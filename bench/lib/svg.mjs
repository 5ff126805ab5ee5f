/**
 * The latency chart of docs/benchmarks.md, written as plain SVG: two panels (p50 and
 * p99), connect latency against occupancy of the port range, one bar per method.
 */

/** The methods of bench/latency.mjs, in the order drawn, with their colour and legend. */
const SERIES = [
  { key: 'kernel', color: '#d62728', label: 'net.connect (kernel)' },
  { key: 'pool', color: '#1f77b4', label: "porter 'pool'" },
  { key: 'kernelMode', color: '#ff7f0e', label: "porter 'kernel'" },
  { key: 'hybrid', color: '#2ca02c', label: 'porter default' },
];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

function panel(levels, series, key, title, x0, width, height) {
  const top = 40;
  const left = 56;
  const bottom = 40;
  const plotW = width - left - 16;
  const plotH = height - top - bottom;
  const max = niceMax(Math.max(...levels.flatMap((l) => series.map((s) => l[s.key][key]))) * 1.05);
  const y = (v) => top + plotH - (v / max) * plotH;
  const groupW = plotW / levels.length;
  const barW = Math.min(22, groupW / (series.length + 1));
  const parts = [`<g transform="translate(${x0},0)">`];
  parts.push(
    `<text x="${left + plotW / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  );
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    const yy = y(v).toFixed(1);
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${yy}" dy="4" text-anchor="end" font-size="11">${Math.round(v)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(
    `<text transform="translate(14,${top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">microseconds</text>`,
  );
  levels.forEach((l, i) => {
    const cx = left + groupW * i + groupW / 2;
    series.forEach(({ key: name, color, label }, j) => {
      const v = l[name][key];
      const bx = cx - (series.length * barW) / 2 + j * barW;
      const by = y(v);
      parts.push(
        `<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + plotH - by).toFixed(1)}" fill="${color}"><title>${esc(label)} ${key} at ${Math.round(l.occupancy * 100)}%: ${v.toFixed(0)} us</title></rect>`,
      );
      parts.push(
        `<text x="${(bx + (barW - 2) / 2).toFixed(1)}" y="${(by - 3).toFixed(1)}" text-anchor="middle" font-size="8">${v.toFixed(0)}</text>`,
      );
    });
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" font-size="12">${Math.round(l.occupancy * 100)}%</text>`,
    );
  });
  parts.push(
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle" font-size="12">ports of the range in use to the destination</text>`,
  );
  parts.push('</g>');
  return parts.join('\n');
}

/** The whole chart for `levels` (as bench/latency.mjs reports them). */
export function latencyChart(levels, subtitle = '') {
  const width = 840;
  const height = 340;
  const half = width / 2;
  const series = SERIES.filter((s) => levels.every((l) => l[s.key]));
  const legend = series
    .map(({ color, label }, i) => {
      const x = 20 + i * 140;
      return `<rect x="${x}" y="${height - 8 - 10}" width="12" height="12" fill="${color}"/><text x="${x + 18}" y="${height - 8}" font-size="12">${esc(label)}</text>`;
    })
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height + 20}" viewBox="0 0 ${width} ${height + 20}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel(levels, series, 'p50Us', 'connect latency p50', 0, half, height - 20),
    panel(levels, series, 'p99Us', 'connect latency p99', half, half, height - 20),
    legend,
    subtitle
      ? `<text x="${width - 10}" y="${height + 10}" text-anchor="end" font-size="11" fill="#555">${esc(subtitle)}</text>`
      : '',
    '</svg>',
    '',
  ].join('\n');
}
