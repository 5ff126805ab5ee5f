/**
 * `porter hold --workers`: past one process's open-file limit (20,000 here). In a network
 * namespace the test creates, four server processes share one port with SO_REUSEPORT
 * (each has the same limit: 40,000 accepted connections need at least three); one
 * `porter hold --count 40000` is refused before any connect, then `--workers 4` opens all
 * 40,000 to that one destination, each worker's Porter with its own slice of the range.
 */
import { fileURLToPath } from 'node:url';
import { type HoldJson, inNetns } from '../helpers/cli.js';
import { netnsUnavailableReason } from '../helpers/netns.mjs';
import { programsMissing, testIf, which } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/hold-scenario.ts', import.meta.url));

interface Run {
  code: number;
  stderr: string;
  lines: (HoldJson & { workers: number; kernel_picks: number; retries: Record<string, number> })[];
  seen: { accepted: number; open: number };
}

testIf(netnsUnavailableReason() ?? programsMissing({ perl: which('perl') }), { serial: true })(
  '40,000 connections to one destination under a 20,000 open-file limit: refused alone, all opened with --workers 4',
  async (t) => {
    const run = await inNetns(
      t,
      [
        JSON.stringify({
          servers: 'reuseport',
          processes: 4,
          runs: [
            ['hold', '{target}', '-n', '40000', '--json'],
            ['hold', '{target}', '-n', '40000', '--workers', '4', '-c', '400', '-d', '1', '--json'],
          ],
        }),
      ],
      { script, timeoutMs: 300_000 },
    );
    t.is(run.code, 0, run.stderr);
    const [alone, workers] = lastJson<{ runs: Run[] }>(run.stdout).runs;
    if (alone === undefined || workers === undefined) throw new Error('two runs expected');

    // Alone: refused before any connect, with the fix.
    t.is(alone.code, 2, alone.stderr);
    const { error } = alone.lines.at(-1) as unknown as { error: { code: string; argument: string; fix: string } };
    t.is(error.code, 'ERR_PORTER_FD_LIMIT');
    t.is(error.argument, '--count');
    t.regex(error.fix, /--workers 3\b/);
    t.regex(error.fix, /ulimit -Hn \d+/);
    t.regex(alone.stderr, /the open-file limit is 20,000/);
    t.is(alone.seen.accepted, 0, 'nothing connected');

    // Split over four processes: one result, every connection opened and seen by the servers.
    t.is(workers.code, 0, workers.stderr);
    const r = workers.lines.at(-1);
    if (r === undefined) throw new Error(workers.stderr);
    t.log(
      `opened ${r.opened} at ${r.rate_per_sec}/s, kernel picks ${r.kernel_picks}, retries ${JSON.stringify(r.retries)}`,
    );
    t.is(workers.lines.length, 1, 'one JSON result for the four processes');
    t.is(r.workers, 4);
    t.is(r.count, 40_000);
    t.is(r.opened, 40_000);
    t.is(r.failed, 0);
    t.deepEqual(r.errors, {});
    t.is(
      r.connect_histogram.reduce((n, b) => n + b.count, 0),
      40_000,
      'every latency reached the one result',
    );
    t.is(workers.seen.accepted, 40_000, 'the four server processes accepted 40,000 between them');
    t.is(r.pools.length, 1);
    t.is(r.pools[0]?.in_use, 40_000, "the four Porters' pools merged: one destination, 40,000 ports in use");
    // Each worker had its own slice of the range: no port was tried by two of them.
    t.deepEqual(r.retries, {});
    t.regex(workers.stderr, /porter hold: all 40,000 connections opened/);
    t.regex(workers.stderr, /│ workers +│ 4 processes +│/);
  },
);
