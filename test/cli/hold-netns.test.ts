/**
 * `porter hold` in network namespaces of its own, where fixed port ranges and the
 * kernel's ephemeral range can be set without touching the host.
 */
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { type HoldJson, inNetns } from '../helpers/cli.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/hold-scenario.ts', import.meta.url));

type Report = HoldJson & { kernel_picks: number; kernel_fallbacks: number; mode: string };

interface Runs {
  target: string;
  runs: { code: number | null; stderr: string; report: Report }[];
}

/**
 * Runs `porter` with each argument list in a namespace of its own (`sysctls` set there)
 * against a server that accepts and reads, on a fixed port (20000) outside every range the
 * tests give porter or the kernel: a listener on a port of porter's range would make its
 * bind there fail. Each run's report is the last JSON line it printed.
 */
async function holdRuns(
  t: ExecutionContext,
  runs: string[][],
  sysctls: Record<string, string | number>,
): Promise<Runs> {
  const run = await inNetns(t, [JSON.stringify({ servers: 'silent', port: 20000, runs })], { script, sysctls });
  t.is(run.code, 0, run.stderr);
  const { target, runs: results } = lastJson<{
    target: string;
    runs: { code: number | null; stderr: string; lines: Report[] }[];
  }>(run.stdout);
  return { target, runs: results.map(({ lines, ...r }) => ({ ...r, report: lines.at(-1) as Report })) };
}

test('in a namespace, a range of 10 ports: one --local address opens 10, three open 30', async (t) => {
  const hold = ['hold', '{target}', '-n', '30', '--range', '40000-40009', '--no-fallback', '--json'];
  const { target, runs } = await holdRuns(
    t,
    [hold, [...hold, '--local', '127.0.0.1,127.0.0.2,127.0.0.3']],
    // TIME_WAIT from the first run must not stop the second from reusing the 4-tuples.
    { 'net.ipv4.ip_local_port_range': '50000 50999', 'net.ipv4.tcp_tw_reuse': 1 },
  );
  const [one, three] = runs;
  if (one === undefined || three === undefined) throw new Error('two runs expected');

  t.is(one.code, 1, one.stderr);
  t.is(one.report.opened, 10);
  t.is(one.report.failed, 20);
  t.deepEqual(one.report.errors, { ERR_PORTER_EXHAUSTED: 20 });
  t.deepEqual(one.report.pools, [{ remote: target, local: '0.0.0.0', in_use: 10, aging: 0, free: 0 }]);

  t.is(three.code, 0, three.stderr);
  t.is(three.report.opened, 30);
  t.is(three.report.failed, 0);
  t.deepEqual(
    [...three.report.pools].sort((a, b) => a.local.localeCompare(b.local)),
    ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((local) => ({ remote: target, local, in_use: 10, aging: 0, free: 0 })),
    'each source address adds the whole range for the destination',
  );
});

/** One `porter hold` run in a namespace of its own whose ephemeral range is 40000-40999. */
async function holdInNamespace(t: ExecutionContext, args: string[]): Promise<Runs['runs'][number]> {
  const { runs } = await holdRuns(t, [['hold', '{target}', ...args, '--json']], {
    'net.ipv4.ip_local_port_range': '40000 40999',
  });
  const result = runs[0];
  if (result === undefined) throw new Error('no run');
  return result;
}

// Porter's range 39990-40009: 10 ports below the ephemeral range 40000-40999, 10 inside.
const range = ['--range', '39990-40009', '--no-fallback'];

test('--mode hybrid (the default): porter binds the 10 ports outside the ephemeral range, the kernel picks the 10 inside', async (t) => {
  const hybrid = await holdInNamespace(t, ['-n', '25', ...range]);
  t.is(hybrid.code, 1, hybrid.stderr);
  t.like(hybrid.report, { mode: 'hybrid', opened: 20, kernel_picks: 10, kernel_fallbacks: 0 });
  t.deepEqual(hybrid.report.errors, { ERR_PORTER_EXHAUSTED: 5 });
  t.like(hybrid.report.pools[0], { in_use: 20, free: 0 });
});

test('--mode pool: porter binds all 20 itself', async (t) => {
  const pool = await holdInNamespace(t, ['-n', '25', '--mode', 'pool', ...range]);
  t.is(pool.code, 1, pool.stderr);
  t.like(pool.report, { mode: 'pool', opened: 20, kernel_picks: 0 });
  t.deepEqual(pool.report.errors, { ERR_PORTER_EXHAUSTED: 5 });
});

test('--mode kernel: only the 10 ports inside the ephemeral range, each picked by the kernel', async (t) => {
  const kernel = await holdInNamespace(t, ['-n', '25', '--mode', 'kernel', ...range]);
  t.is(kernel.code, 1, kernel.stderr);
  t.like(kernel.report, { mode: 'kernel', opened: 10, kernel_picks: 10 });
  t.deepEqual(kernel.report.errors, { ERR_PORTER_EXHAUSTED: 15 });
});

test('--mode kernel with a range outside the ephemeral range: a usage error naming the fix, exit 2', async (t) => {
  const unsupported = await holdInNamespace(t, ['-n', '5', '--mode', 'kernel', '--range', '30000-30009']);
  t.is(unsupported.code, 2, unsupported.stderr);
  t.like((unsupported.report as unknown as { error: object }).error, {
    code: 'ERR_PORTER_MODE_UNSUPPORTED',
    argument: '--mode',
  });
  t.regex(
    unsupported.stderr,
    /fix: use --mode hybrid, or a --range that covers the kernel's ephemeral range, e\.g\. --range 40000-40999/,
  );
});
