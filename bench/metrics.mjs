/**
 * What @porter/metrics costs: runs bench/metrics-overhead.mjs in a process of its own (it
 * measures on import) and writes its part of docs/benchmarks.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../test/helpers/run.mjs';
import { table } from './lib/format.mjs';
import { lastJsonLine, tail } from './lib/util.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

export async function runMetricsOverhead({ quick = false } = {}) {
  const script = join(root, 'bench', 'metrics-overhead.mjs');
  if (!existsSync(script)) return { missing: 'bench/metrics-overhead.mjs not found' };
  const res = await run(process.execPath, quick ? [script, '--quick'] : [script], {
    cwd: root,
    timeoutMs: quick ? 60_000 : 300_000,
    echo: true,
  });
  const json = lastJsonLine(res.stdout);
  if (res.code !== 0 || !json) return { missing: `metrics-overhead failed (exit ${res.code}): ${tail(res.stderr, 3)}` };
  return json;
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function metricsReport(mo) {
  return [
    'From bench/metrics-overhead.mjs:',
    '',
    table(
      ['figure', 'value'],
      Object.entries(mo).map(([k, v]) => [
        k,
        typeof v === 'number' ? String(Number(v.toPrecision(4))) : JSON.stringify(v),
      ]),
    ),
  ];
}
