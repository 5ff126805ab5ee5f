/**
 * The Rust core's own figures: the memory bench (one JSON line: pool_bytes_idle,
 * pool_bytes_per_port, core_alloc_release_per_sec) and criterion's estimates, read from
 * target/criterion/<id>/new/estimates.json (only those written by this run).
 *
 * Run directly: node bench/core.mjs [--quick].
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../test/helpers/run.mjs';
import { fmtB, fmtNs, fmtRate, fmtRatio, missing, num, table } from './lib/format.mjs';
import { lastJsonLine, log, tail } from './lib/util.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const benchesDir = join(root, 'crates', 'porter-core', 'benches');

/** Cargo's target directory (cargo metadata honours CARGO_TARGET_DIR). */
export async function targetDir() {
  const res = await run('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root });
  try {
    return JSON.parse(res.stdout).target_directory;
  } catch {
    return join(root, 'target');
  }
}

/** Compiles the benches (part of the build, not timed). */
export async function buildCoreBenches() {
  const res = await run('cargo', ['bench', '-p', 'porter-core', '--benches', '--no-run'], {
    cwd: root,
    timeoutMs: 900_000,
  });
  return res.code === 0 ? { ok: true } : { ok: false, error: tail(res.stderr) };
}

export async function runMemoryBench() {
  if (!existsSync(join(benchesDir, 'memory.rs'))) return { missing: 'crates/porter-core/benches/memory.rs not found' };
  log('core: memory bench');
  const res = await run('cargo', ['bench', '-q', '-p', 'porter-core', '--bench', 'memory'], {
    cwd: root,
    timeoutMs: 600_000,
  });
  const json = lastJsonLine(res.stdout);
  if (res.code !== 0 || !json) return { missing: `memory bench failed (exit ${res.code}): ${tail(res.stderr, 3)}` };
  return json;
}

function findEstimates(dir, since, out = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'new') {
        const est = join(path, 'estimates.json');
        const meta = join(path, 'benchmark.json');
        if (existsSync(est) && existsSync(meta) && statSync(est).mtimeMs >= since) out.push({ est, meta });
      } else if (e.name !== 'base' && e.name !== 'change' && e.name !== 'report') {
        findEstimates(path, since, out);
      }
    }
  }
  return out;
}

/** Every criterion benchmark written since `since`: id, median ns per iteration, rate. */
function readCriterion(criterionDir, since) {
  return findEstimates(criterionDir, since)
    .map(({ est, meta }) => {
      const m = JSON.parse(readFileSync(meta, 'utf8'));
      const e = JSON.parse(readFileSync(est, 'utf8'));
      const ns = e.median.point_estimate;
      const elements = m.throughput?.Elements ?? m.throughput?.elements ?? null;
      return {
        id: m.full_id,
        median_ns: ns,
        mean_ns: e.mean.point_estimate,
        elements,
        per_sec: elements ? (elements * 1e9) / ns : 1e9 / ns,
        ns_per_element: elements ? ns / elements : ns,
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}

export async function runCriterion({ quick = false } = {}) {
  if (!existsSync(join(benchesDir, 'core.rs'))) return { missing: 'crates/porter-core/benches/core.rs not found' };
  log(`core: criterion${quick ? ' --quick' : ''}`);
  const since = Date.now() - 1000;
  const args = ['bench', '-q', '-p', 'porter-core', '--bench', 'core', '--', '--noplot'];
  if (quick) args.push('--quick');
  const res = await run('cargo', args, { cwd: root, timeoutMs: 900_000 });
  if (res.code !== 0) return { missing: `criterion failed (exit ${res.code}): ${tail(res.stderr, 3)}` };
  const benches = readCriterion(join(await targetDir(), 'criterion'), since);
  if (benches.length === 0) return { missing: 'criterion wrote no estimates' };
  const find = (re) => benches.find((b) => re.test(b.id)) ?? null;
  const expiry = benches.filter((b) => /expir/i.test(b.id));
  // Criterion reports a benchmark it could not analyse on a line of its own and writes no
  // estimate for it: keep those lines, so a missing figure says why.
  const complaints = `${res.stdout}\n${res.stderr}`
    .split('\n')
    .filter((l) => /criterion\.rs error/i.test(l))
    .map((l) => l.trim());
  return {
    benches,
    complaints,
    pairs_single_thread_per_sec: find(/^pairs\/flow$/)?.per_sec ?? null,
    pairs_bare_pool_per_sec: find(/^pairs\/pool$/)?.per_sec ?? null,
    // A flow's pair (lock, counters, the registry's state) against the bare pool's, in one run.
    flow_vs_pool_ratio:
      find(/^pairs\/flow$/) && find(/^pairs\/pool$/)
        ? find(/^pairs\/flow$/).per_sec / find(/^pairs\/pool$/).per_sec
        : null,
    pairs_two_threads_two_destinations_per_sec: find(/threads.*(two|different|distinct).*dest/i)?.per_sec ?? null,
    pairs_two_threads_same_destination_per_sec: find(/threads.*same/i)?.per_sec ?? null,
    new_destination_first_allocate_ns: find(/new.?dest|first/i)?.ns_per_element ?? null,
    // The largest queue: the cost per port once the fixed cost of a call is spread out.
    expiry_ns_per_port: expiry.length
      ? expiry.reduce((a, b) => ((b.elements ?? 0) > (a.elements ?? 0) ? b : a)).ns_per_element
      : null,
    expiry_ns_per_port_by_size: Object.fromEntries(expiry.map((b) => [b.id.split('/').pop(), b.ns_per_element])),
  };
}

/** The Rust core's part of docs/benchmarks.md (lines, without the heading). */
export function coreReport(core) {
  const out = [];
  const mem = core?.memory;
  if (missing(mem)) {
    out.push(`Memory bench: ${missing(mem)}.`);
  } else {
    out.push(
      "From `cargo bench -p porter-core --bench memory` (heap bytes counted by a global allocator; malloc's own " +
        'per-chunk overhead comes on top):',
    );
    out.push('');
    const rows = [
      ['allocate + release pairs/s, one thread (median of the timed rounds)', fmtRate(mem.core_alloc_release_per_sec)],
      ['bytes per idle pool (a destination with no port in use)', fmtB(mem.pool_bytes_idle)],
      ['bytes per port in use', fmtB(mem.pool_bytes_per_port)],
    ];
    if (num(mem.pool_bytes_per_aging_port)) rows.push(['bytes per aging port', fmtB(mem.pool_bytes_per_aging_port)]);
    if (mem.pool_bytes_per_port_by_count) {
      rows.push([
        'bytes per port in use, by ports in use',
        Object.entries(mem.pool_bytes_per_port_by_count)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', '),
      ]);
    }
    out.push(table(['figure', 'value'], rows));
    out.push('');
    out.push(
      'For comparison, the Erlang library this project follows builds a 64,512-entry table for every new ' +
        'destination (about 4.6 MB each).',
    );
  }
  out.push('');
  const cr = core?.criterion;
  if (missing(cr)) {
    out.push(`Criterion: ${missing(cr)}.`);
  } else {
    out.push('From criterion (`cargo bench -p porter-core --bench core`), medians:');
    out.push('');
    out.push(
      table(
        ['figure', 'value'],
        [
          ['pairs/s, one thread, one destination', fmtRate(cr.pairs_single_thread_per_sec)],
          ['pairs/s, the bare pool (no registry, no lock, no counter)', fmtRate(cr.pairs_bare_pool_per_sec)],
          ["a flow's rate / the bare pool's", fmtRatio(cr.flow_vs_pool_ratio)],
          ['pairs/s, two threads on two destinations (total)', fmtRate(cr.pairs_two_threads_two_destinations_per_sec)],
          [
            'pairs/s, two threads on the same destination (total)',
            fmtRate(cr.pairs_two_threads_same_destination_per_sec),
          ],
          [
            'two threads, same / two destinations',
            fmtRatio(
              num(cr.pairs_two_threads_same_destination_per_sec) && num(cr.pairs_two_threads_two_destinations_per_sec)
                ? cr.pairs_two_threads_same_destination_per_sec / cr.pairs_two_threads_two_destinations_per_sec
                : null,
            ),
          ],
          ['first allocation for a new destination', fmtNs(cr.new_destination_first_allocate_ns)],
          ['expiry, per aged port (largest queue)', fmtNs(cr.expiry_ns_per_port)],
        ],
      ),
    );
    out.push('');
    if (cr.complaints?.length) {
      out.push('Criterion wrote no estimate for some benchmarks in this run (their figures show n/a):');
      out.push('');
      for (const c of cr.complaints) out.push(`- ${c}`);
      out.push('');
    }
    out.push('<details><summary>Every criterion benchmark</summary>');
    out.push('');
    out.push(
      table(
        ['benchmark', 'median per iteration', 'per element', 'elements/s'],
        cr.benches.map((b) => [`\`${b.id}\``, fmtNs(b.median_ns), fmtNs(b.ns_per_element), fmtRate(b.per_sec)]),
      ),
    );
    out.push('');
    out.push('</details>');
  }
  out.push('');

  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  await buildCoreBenches();
  const r = { memory: await runMemoryBench(), criterion: await runCriterion({ quick }) };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
