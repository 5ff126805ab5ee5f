/**
 * `porter hold` on loopback, the options of a load tool: no listener warning whatever the
 * count, no empty pools table, `porter` alone, --ndjson, --threshold, the open-file limit
 * (raised to the hard one, or refused with the fix) and --workers with Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { type HoldJson, porter } from '../helpers/cli.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { programsMissing, testIf, which } from '../helpers/requirements.js';
import { lastJson, run as runScript } from '../helpers/run.mjs';
import { type ServerGroup, startServers } from '../helpers/servers.mjs';
import { eventually } from '../helpers/wait.js';

const lowered = fileURLToPath(new URL('./fixtures/hold-lowered-limit.mjs', import.meta.url));

test('no MaxListenersExceededWarning however many connections are held (none is added per connection)', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(2000);
  // 2,000 held with 100 in flight: a listener per held connection passes the 116 that were allowed.
  const run = await porter([
    'hold',
    `127.0.0.1:${servers.ports[0]}`,
    '-n',
    '2000',
    '-c',
    '100',
    '--range',
    `${range[0]}-${range[1]}`,
    '--json',
  ]);
  t.is(run.code, 0, run.stderr);
  t.is(lastJson<HoldJson>(run.stdout).opened, 2000);
  t.notRegex(run.stderr, /MaxListenersExceededWarning|Possible EventTarget memory leak/);
  t.notRegex(run.stderr, /\(node:\d+\)/, 'no warning at all');
});

test('every connect refused: no pools table, the failures by code', async (t) => {
  const refused = await freePort();
  const run = await porter(['hold', `127.0.0.1:${refused}`, '-n', '5']);
  t.is(run.code, 1);
  t.regex(run.stdout, /5 of 5 connects failed/);
  t.regex(run.stdout, /ECONNREFUSED 5/);
  t.notRegex(run.stdout, /Pools with every connection open/);
  t.notRegex(run.stdout, /local address/);
});

test('porter alone: the help, then the ERR_MISSING_ARGUMENT line and its fix, exit 2', async (t) => {
  const run = await porter([]);
  t.is(run.code, 2);
  t.regex(run.stderr, /^Usage: porter /m);
  t.regex(run.stderr, /^porter: ERR_MISSING_ARGUMENT: no command given \(one of doctor, hold, inspect, demo\)$/m);
  t.regex(run.stderr, /^ {2}fix: add one: porter doctor, porter hold/m);
});

const PHASES = ['opening', 'holding', 'closing'];

test('--ndjson: one JSON object a second while it runs, then the result', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(300);
  const target = `127.0.0.1:${servers.ports[0]}`;
  // 250 connects at 100 a second: at least two whole seconds of opening.
  const run = await porter([
    'hold',
    target,
    '-n',
    '250',
    '-r',
    '100',
    '--range',
    `${range[0]}-${range[1]}`,
    '--ndjson',
  ]);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const seconds = lines.slice(0, -1);
  const result = lines.at(-1) as unknown as HoldJson;
  t.true(seconds.length >= 2, `${seconds.length} lines before the result`);
  t.is(seconds[0]?.phase, 'opening');
  for (const [i, s] of seconds.entries()) {
    t.deepEqual(Object.keys(s), [
      'elapsed_s',
      'phase',
      'opened',
      'failed',
      'held',
      'rate_per_sec',
      'connect_p50_ms',
      'connect_p99_ms',
      'errors',
      'dropped',
      'aging',
    ]);
    t.deepEqual(s.errors, {});
    t.true((s.rate_per_sec as number) > 0);
    t.true((s.connect_p50_ms as number) <= (s.connect_p99_ms as number));
    if (i > 0) {
      const before = seconds[i - 1] as { elapsed_s: number; opened: number; phase: string };
      t.true((s.elapsed_s as number) > before.elapsed_s);
      t.true(PHASES.indexOf(s.phase as string) >= PHASES.indexOf(before.phase), 'phases in order');
      t.true((s.opened as number) >= before.opened);
    }
  }
  t.deepEqual(result.targets, [target]);
  t.is(result.opened, 250);
  // The people's view went to stderr.
  t.regex(run.stderr, /porter hold: all 250 connections opened/);
});

test('--threshold: the result decides the exit code, 99 and the crossed ones named; bad ones refused at parse time', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(20);
  const common = ['hold', `127.0.0.1:${servers.ports[0]}`, '-n', '10', '--range', `${range[0]}-${range[1]}`, '--json'];
  const held = await porter([...common, '--threshold', 'failed==0', '--threshold', 'opened>=10']);
  t.is(held.code, 0, held.stderr);
  t.deepEqual(lastJson<{ thresholds: object[] }>(held.stdout).thresholds, [
    { expression: 'failed==0', value: 0, crossed: false },
    { expression: 'opened>=10', value: 10, crossed: false },
  ]);
  const crossed = await porter([...common, '--threshold', 'connect_p99_ms<0', '--threshold', 'errors.ECONNREFUSED==0']);
  t.is(crossed.code, 99, crossed.stderr);
  const r = lastJson<{ thresholds: { expression: string; crossed: boolean }[] }>(crossed.stdout);
  t.deepEqual(
    r.thresholds.map((x) => [x.expression, x.crossed]),
    [
      ['connect_p99_ms<0', true],
      ['errors.ECONNREFUSED==0', false],
    ],
  );
  t.regex(crossed.stderr, /^ {2}CROSSED connect_p99_ms<0 \([\d.]+\)$/m);
  t.regex(crossed.stderr, /^ {2}ok {6}errors\.ECONNREFUSED==0 \(0\)$/m);
  // Refused before anything connects.
  for (const [expression, message] of [
    ['connect_p99_ms<<5', /is not "key op number"/],
    ['p99<5', /"p99" is not a numeric key of the result/],
    ['rtt_p99_ms<5', /rtt_p99_ms is measured with --message only/],
    ['failed=0', /is not "key op number"/],
  ] as const) {
    const bad = await porter([...common, '--threshold', expression]);
    t.is(bad.code, 2, expression);
    const { error } = lastJson<{ error: { code: string; argument: string; message: string } }>(bad.stdout);
    t.like(error, { code: 'ERR_INVALID_ARG_VALUE', argument: '--threshold' });
    t.regex(error.message, message);
    t.notRegex(bad.stderr, /porter hold: all/);
  }
});

test('a --count past the open-file limit is refused before any connect, exit 2, with the fix', async (t) => {
  const server = await silentServer(t);
  const target = `127.0.0.1:${server.ports[0]}`;
  const run = await porter(['hold', target, '-n', '50000', '--json']);
  t.is(run.code, 2, run.stderr);
  const { error } = lastJson<{ error: { code: string; argument: string; message: string; fix: string } }>(run.stdout);
  t.is(error.code, 'ERR_PORTER_FD_LIMIT');
  t.regex(error.message, /--count 50,000 needs [\d,]+ open files per process/);
  t.regex(error.fix, /--workers 3\b/);
  t.regex(run.stderr, /^porter hold: ERR_PORTER_FD_LIMIT: /m);
  // Enough workers: still refused when each share cannot fit.
  const few = await porter(['hold', target, '-n', '50000', '--workers', '2', '--json']);
  t.is(few.code, 2);
  t.like(lastJson<{ error: object }>(few.stdout).error, { code: 'ERR_PORTER_FD_LIMIT', argument: '--workers' });
  t.is((await server.count()).accepted, 0, 'nothing connected');
});

test("--workers: one view, one result; SIGINT while holding closes every worker's connections, exit 130", async (t) => {
  const server = await silentServer(t);
  const port = server.ports[0] as number;
  const range = await findFreePortBlock(64);
  let sawHolding: () => void = () => {};
  const holding = new Promise<void>((resolve) => {
    sawHolding = resolve;
  });
  const args = ['hold', `127.0.0.1:${port}`, '-n', '40', '--workers', '3', '-d', '60'];
  const result = await porter([...args, '--range', `${range[0]}-${range[1]}`, '--json'], {
    onSpawn(child) {
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (/holding 40/.test(err)) sawHolding();
      });
      void holding.then(async () => {
        // The server, a process of its own, accepts the last of them a moment later.
        await eventually(async () => (await server.count()).accepted >= 40, once(child, 'exit'));
        t.is((await server.count()).open, 40, 'all 40 held open, by three processes');
        child.kill('SIGINT');
      });
    },
  });
  t.is(result.code, 130, result.stderr);
  t.is(result.stdout.trim().split('\n').length, 1, 'one JSON result');
  const r = lastJson<HoldJson & { workers: number }>(result.stdout);
  t.like(r, { workers: 3, opened: 40, failed: 0, interrupted: true });
  // Each worker took a third of the 64 ports (no two contend for a port): the three pools
  // towards the one destination, merged.
  t.deepEqual(r.pools, [{ remote: `127.0.0.1:${port}`, local: '0.0.0.0', in_use: 40, aging: 0, free: 64 - 40 }]);
  t.regex(result.stderr, /porter hold: interrupted: 40 of 40 connects tried/);
  t.true(await closedAll(server, 40), 'every connection was closed');
});

testIf(programsMissing({ prlimit: which('prlimit') }))(
  'a soft open-file limit lowered below the count is raised to the hard one first (as tcpkali does), then the run goes on',
  async (t) => {
    const range = await findFreePortBlock(3000);
    const run = await runScript(process.execPath, [lowered, `${range[0]}-${range[1]}`], { timeoutMs: 90_000 });
    t.is(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    const result = JSON.parse(lines.at(-1) as string) as { lowered: number[]; code: number; after: number[] };
    const report = JSON.parse(lines.at(-2) as string) as HoldJson;
    t.is(result.lowered[0], 1000);
    t.is(result.code, 0, run.stderr);
    t.is(report.opened, 3000);
    t.regex(run.stderr, /porter hold: raised the open-file soft limit from 1,000 to the hard limit/);
    t.is(result.after[0], result.after[1], 'the soft limit is the hard one now');
  },
);

/** A server in a process of its own that holds what it accepts, reading; stopped at the test's end. */
async function silentServer(t: ExecutionContext): Promise<ServerGroup> {
  const server = await startServers({ mode: 'silent' });
  t.teardown(() => server.stop());
  return server;
}

/** Whether the server accepted `accepted` and has none open, once it has seen every close. */
async function closedAll(server: ServerGroup, accepted: number): Promise<boolean> {
  await eventually(async () => (await server.count()).open === 0);
  const c = await server.count();
  return c.accepted === accepted && c.open === 0;
}

test('--workers with --metrics: each worker serves its own Porter, porter inspect reads each', async (t) => {
  const port = (await silentServer(t)).ports[0] as number;
  const range = await findFreePortBlock(40);
  const inspected: Promise<Awaited<ReturnType<typeof porter>>>[] = [];
  const args = ['hold', `127.0.0.1:${port}`, '-n', '20', '--workers', '2', '-d', '30', '--metrics', '0'];
  const run = await porter([...args, '--range', `${range[0]}-${range[1]}`, '--json'], {
    onSpawn(child) {
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (inspected.length === 0 && /holding 20/.test(err)) {
          for (const m of err.matchAll(/metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/g)) {
            inspected.push(porter(['inspect', m[1] as string, '--json']));
          }
          void Promise.all(inspected).finally(() => child.kill('SIGINT'));
        }
      });
    },
  });
  t.is(run.code, 130, run.stderr);
  const r = lastJson<{ metrics_url: string; metrics_urls: string[] }>(run.stdout);
  t.is(r.metrics_urls.length, 2);
  t.is(r.metrics_url, r.metrics_urls[0] as string);
  const states = (await Promise.all(inspected)).map((i) =>
    lastJson<{ pools: { in_use: number; free: number }[] }>(i.stdout),
  );
  t.is(states.length, 2);
  // Each worker holds its 10 on its own half of the 40 ports.
  t.deepEqual(
    states.map((s) => [s.pools[0]?.in_use, (s.pools[0]?.in_use ?? 0) + (s.pools[0]?.free ?? 0)]),
    [
      [10, 20],
      [10, 20],
    ],
  );
});

test('a worker that dies: the others go on, the run ends with the summary, exit 1, and says which', async (t) => {
  const server = await silentServer(t);
  const port = server.ports[0] as number;
  const range = await findFreePortBlock(60);
  let killed = 0;
  const args = ['hold', `127.0.0.1:${port}`, '-n', '30', '--workers', '3', '-d', '3'];
  const run = await porter([...args, '--range', `${range[0]}-${range[1]}`, '--json'], {
    onSpawn(child) {
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (killed === 0 && /holding 30/.test(err)) {
          // The workers are the hold process's children: kill one of them.
          const pids = execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
            .trim()
            .split('\n');
          killed = Number(pids[0]);
          process.kill(killed, 'SIGKILL');
        }
      });
    },
  });
  t.true(killed > 0);
  t.is(run.code, 1, run.stderr);
  const r = lastJson<HoldJson & { worker_failures: string[] }>(run.stdout);
  t.is(r.opened, 30);
  t.deepEqual(r.worker_failures, [
    `worker ${r.worker_failures[0]?.match(/worker (\d)/)?.[1]} (pid ${killed}) exited (SIGKILL) before the run ended`,
  ]);
  t.regex(run.stderr, /porter hold: worker \d \(pid \d+\) exited \(SIGKILL\) before the run ended/);
  t.true(
    await closedAll(server, 30),
    "the dead worker's connections were closed by the kernel, the others' by their workers",
  );
});

test('--ramp: the connects follow the rising rate to the end; without --rate it is refused', async (t) => {
  const server = await silentServer(t);
  const range = await findFreePortBlock(120);
  const target = `127.0.0.1:${server.ports[0]}`;
  // 200/s reached over 0.5 s: 50 connects in the ramp, then 70 at 200/s.
  const run = await porter([
    'hold',
    target,
    '-n',
    '120',
    '-r',
    '200',
    '--ramp',
    '0.5',
    '--range',
    `${range[0]}-${range[1]}`,
    '--json',
  ]);
  t.is(run.code, 0, run.stderr);
  t.like(lastJson<HoldJson>(run.stdout), { opened: 120, failed: 0 });
  t.true(await closedAll(server, 120));
  const refused = await porter(['hold', target, '--ramp', '5', '--json']);
  t.is(refused.code, 2);
  t.like(lastJson<{ error: object }>(refused.stdout).error, { code: 'ERR_INVALID_ARG_VALUE', argument: '--ramp' });
});

test('SIGINT while connects are stuck (SYNs dropped): exit 130 without waiting for them; they count neither as opened nor failed', async (t) => {
  // A listener that never accepts, with a backlog of 1: past its accept queue, SYNs are dropped.
  const stuck = await startServers({ mode: 'no-accept' });
  t.teardown(() => stuck.stop());
  const range = await findFreePortBlock(60);
  const args = ['hold', `127.0.0.1:${stuck.ports[0]}`, '-n', '50', '-c', '10', '--timeout', '120000'];
  const run = await porter([...args, '--range', `${range[0]}-${range[1]}`, '--json'], {
    timeoutMs: 60_000,
    onSpawn(child) {
      let err = '';
      let sent = false;
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        // A line a second while opening: by the second, the queue is full and connects wait.
        if (!sent && (err.match(/opening: /g) ?? []).length === 2) {
          sent = true;
          child.kill('SIGINT');
        }
      });
    },
  });
  t.false(run.timedOut, 'it did not wait for the stuck connects (their timeout is 120 s)');
  t.is(run.code, 130, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.true(r.interrupted);
  t.is(r.failed, 0, 'given up, not failed');
  t.true(r.opened < 50, `${r.opened} opened`);
  t.is(r.attempted, r.opened);
});
