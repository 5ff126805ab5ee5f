/**
 * What the commands draw: tables (cli-table3) and the latency histogram (chartscii), as
 * plain strings; the caller decides where they go. Colour only on a terminal that has
 * it (NO_COLOR, FORCE_COLOR=0 and pipes turn it off).
 */
import { stripVTControlCharacters } from 'node:util';
import Chartscii from 'chartscii';
import Table from 'cli-table3';
import { type Bucket, bucketLabel } from './latency.js';

/** Whether to colour what goes to `stream`. */
export function wantsColor(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && typeof stream.hasColors === 'function' && stream.hasColors();
}

/** A table with a header row; numbers are right-aligned. */
export function table(head: string[], rows: (string | number)[][], color: boolean): string {
  const t = new Table({
    head,
    style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [] },
    colAligns: head.map((_, i) => (rows.some((r) => typeof r[i] === 'number') ? 'right' : 'left')),
  });
  for (const row of rows) t.push(row.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : c)));
  return color ? t.toString() : stripVTControlCharacters(t.toString());
}

/** Two columns, no header: `name  value` pairs. */
export function keyValues(rows: [string, string | number][], color: boolean): string {
  const t = new Table({ style: { head: [], border: color ? ['grey'] : [] } });
  for (const [k, v] of rows) t.push({ [k]: typeof v === 'number' ? v.toLocaleString('en-US') : v });
  return color ? t.toString() : stripVTControlCharacters(t.toString());
}

/**
 * A horizontal bar per latency bucket, from the first bucket with samples to the last,
 * each labelled with its bound and count. Empty string when there are no samples.
 */
export function histogram(title: string, buckets: Bucket[], color: boolean, width = 40): string {
  let first = buckets.findIndex((b) => b.count > 0);
  if (first < 0) return '';
  const last = buckets.length - 1 - [...buckets].reverse().findIndex((b) => b.count > 0);
  first = Math.max(0, first);
  const data = buckets.slice(first, last + 1).map((b, i) => {
    const previous = buckets[first + i - 1]?.le;
    return { label: bucketLabel(b.le, typeof previous === 'number' ? previous : undefined), value: b.count };
  });
  const chart = new Chartscii(data, {
    title,
    width,
    orientation: 'horizontal',
    barSize: 1,
    height: data.length,
    valueLabels: true,
    ...(color ? { color: 'cyan' } : {}),
  });
  const text = chart.create();
  return color ? text : stripVTControlCharacters(text);
}
