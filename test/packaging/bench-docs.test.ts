/**
 * docs/benchmarks.md is what `npm run bench` writes from its results: rendered again from
 * the newest committed bench/results/<date>.json, it is the committed file to the byte.
 * This runs every section's report code (a name a report uses but never imports fails
 * here, not at the end of a six-minute run) and catches a hand edit of the figures.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('docs/benchmarks.md is rendered from the newest committed benchmark results', (t) => {
  const runs = readdirSync(join(root, 'bench', 'results'))
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f))
    .sort();
  const newest = runs.at(-1);
  t.truthy(newest, 'bench/results holds at least one run');
  // bench/run.mjs's own rendering (in a process of its own: the benchmarks are plain ESM).
  const out = spawnSync(
    process.execPath,
    [join(root, 'bench', 'run.mjs'), '--render', join(root, 'bench', 'results', newest as string), '--stdout'],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  t.is(out.status, 0, out.stderr);
  const committed = readFileSync(join(root, 'docs', 'benchmarks.md'), 'utf8');
  t.true(out.stdout === committed, `docs/benchmarks.md differs from ${newest} rendered: run \`npm run bench\``);
  t.regex(committed, new RegExp(`bench/results/${newest?.replace('.', '\\.')}`), 'the doc names its results file');
});
