import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import test from 'ava';
import { type HoldJson, porter } from '../helpers/cli.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';
import { startServers } from '../helpers/servers.mjs';

test('hold --json: every connection opened, counted, and in the pools of its destination', async (t) => {
  const servers = await startServers({ mode: 'echo', count: 2 });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(64);
  const targets = servers.ports.map((p) => `127.0.0.1:${p}`);
  const run = await porter(['hold', ...targets, '--count', '40', '--range', `${range[0]}-${range[1]}`, '--json']);
  t.is(run.code, 0, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.is(run.stdout.trim().split('\n').length, 1, 'with --json, stdout holds the JSON object only');
  t.deepEqual(r.targets, targets);
  t.is(r.count, 40);
  t.is(r.attempted, 40);
  t.is(r.opened, 40);
  t.is(r.failed, 0);
  t.deepEqual(r.errors, {});
  t.is(r.dropped, 0);
  t.false(r.interrupted);
  t.true(r.rate_per_sec > 0);
  t.true((r.connect_p50_ms ?? -1) > 0 && (r.connect_p50_ms ?? 0) <= (r.connect_p99_ms ?? 0));
  t.is(
    r.connect_histogram.reduce((n, b) => n + b.count, 0),
    40,
    'every connect is in one bucket of the histogram',
  );
  // One pool per destination, 20 ports each in use (every other connect), none aging.
  t.deepEqual(
    [...r.pools].sort((a, b) => a.remote.localeCompare(b.remote)),
    [...targets].sort().map((remote) => ({ remote, local: '0.0.0.0', in_use: 20, aging: 0, free: 64 - 20 })),
  );
  // The people's summary went to stderr.
  t.regex(run.stderr, /porter hold: all 40 connections opened/);
});

test('hold: failures are counted by code, and the exit code is 1', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const refused = await freePort();
  const range = await findFreePortBlock(32);
  const run = await porter([
    'hold',
    `127.0.0.1:${servers.ports[0]}`,
    `127.0.0.1:${refused}`,
    '-n',
    '20',
    '--range',
    `${range[0]}-${range[1]}`,
    '--json',
  ]);
  t.is(run.code, 1, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.is(r.opened, 10);
  t.is(r.failed, 10);
  t.deepEqual(r.errors, { ECONNREFUSED: 10 });
  const open = r.pools.find((p) => p.remote === `127.0.0.1:${servers.ports[0]}`);
  const failed = r.pools.find((p) => p.remote === `127.0.0.1:${refused}`);
  t.like(open, { in_use: 10, aging: 0 });
  // A refused connect leaves no state on either side: its port is free at once.
  t.like(failed, { in_use: 0, aging: 0 });
  t.regex(run.stderr, /10 of 20 connects failed/);
  t.regex(run.stderr, /ECONNREFUSED 10/);
});

test('hold --no-fallback on a range of 5 ports: 5 open, the rest ERR_PORTER_EXHAUSTED', async (t) => {
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(5);
  const target = `127.0.0.1:${servers.ports[0]}`;
  const run = await porter([
    'hold',
    target,
    '-n',
    '8',
    '--range',
    `${range[0]}-${range[1]}`,
    '--no-fallback',
    '--json',
  ]);
  t.is(run.code, 1, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.is(r.opened, 5);
  t.deepEqual(r.errors, { ERR_PORTER_EXHAUSTED: 3 });
  t.deepEqual(r.pools, [{ remote: target, local: '0.0.0.0', in_use: 5, aging: 0, free: 0 }]);
});

test('hold --send writes the payload on every connection; --duration holds them', async (t) => {
  const received: Buffer[] = [];
  const open = new Set<Socket>();
  let peak = 0;
  const server = createServer((s) => {
    open.add(s);
    peak = Math.max(peak, open.size);
    s.on('data', (d: Buffer) => received.push(d));
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const range = await findFreePortBlock(16);
  const run = await porter([
    'hold',
    `127.0.0.1:${port}`,
    '-n',
    '6',
    '--range',
    `${range[0]}-${range[1]}`,
    '--send',
    'PING\\r\\n',
    '--duration',
    '1',
    '--json',
  ]);
  t.is(run.code, 0, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.is(r.opened, 6);
  t.true(r.held_ms >= 950, `held ${r.held_ms} ms`);
  t.is(peak, 6, 'all six were open at once');
  t.is(Buffer.concat(received).toString(), 'PING\r\n'.repeat(6));
  // Closed from this side: the server saw every connection end.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(open.size, 0);
});

test('hold: SIGINT while holding closes every connection, prints the summary and exits 130', async (t) => {
  const open = new Set<Socket>();
  const server = createServer((s) => {
    open.add(s);
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const range = await findFreePortBlock(32);
  let sawHolding: () => void = () => {};
  const holding = new Promise<void>((resolve) => {
    sawHolding = resolve;
  });
  const run = porter(
    ['hold', `127.0.0.1:${port}`, '-n', '20', '--range', `${range[0]}-${range[1]}`, '--duration', '60', '--json'],
    {
      onSpawn(child) {
        let err = '';
        child.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          if (/holding 20/.test(err)) sawHolding();
        });
        void holding.then(() => {
          t.is(open.size, 20, 'all 20 held open');
          child.kill('SIGINT');
        });
      },
    },
  );
  const result = await run;
  t.is(result.code, 130, result.stderr);
  const r = lastJson<HoldJson>(result.stdout);
  t.true(r.interrupted);
  t.is(r.opened, 20);
  t.is(r.failed, 0);
  t.true(r.held_ms < 30_000);
  t.regex(result.stderr, /porter hold: interrupted/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(open.size, 0, 'every connection was closed');
});

test('hold: bad arguments exit 2 with a stable code that names the argument and the fix', async (t) => {
  const cases: { args: string[]; code: string; argument: string; fix: RegExp }[] = [
    {
      args: ['127.0.0.1:80', '--count', 'abc'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--count',
      fix: /--count \d+/,
    },
    { args: ['127.0.0.1:80', '--count', '0'], code: 'ERR_INVALID_ARG_VALUE', argument: '--count', fix: /--count/ },
    { args: ['localhost'], code: 'ERR_INVALID_ARG_VALUE', argument: '<destination>', fix: /host:port/ },
    { args: ['127.0.0.1:70000'], code: 'ERR_INVALID_ARG_VALUE', argument: '<destination>', fix: /host:port/ },
    {
      args: ['127.0.0.1:80', '--range', '5000-4000'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--range',
      fix: /--range \d+-\d+/,
    },
    {
      args: ['127.0.0.1:80', '--local', '10.0.0.300'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--local',
      fix: /IP addresses/,
    },
    {
      args: ['127.0.0.1:80', '--servername', 'x'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--servername',
      fix: /--tls/,
    },
    {
      args: ['127.0.0.1:80', '--tls', '--ca', '/nonexistent/ca.pem'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--ca',
      fix: /readable file/,
    },
    {
      args: ['127.0.0.1:80', '--metrics', 'web:x'],
      code: 'ERR_INVALID_ARG_VALUE',
      argument: '--metrics',
      fix: /--metrics 9464/,
    },
    { args: ['127.0.0.1:80', '--cont', '5'], code: 'ERR_UNKNOWN_OPTION', argument: '--cont', fix: /--help/ },
    { args: [], code: 'ERR_MISSING_ARGUMENT', argument: '<destination>', fix: /--help/ },
  ];
  for (const c of cases) {
    const run = await porter(['hold', ...c.args, '--json']);
    t.is(run.code, 2, `${c.args.join(' ')}: ${run.stderr}`);
    const { error } = lastJson<{ error: { code: string; argument: string; message: string; fix: string } }>(run.stdout);
    t.is(error.code, c.code, c.args.join(' '));
    t.is(error.argument, c.argument, c.args.join(' '));
    t.regex(error.fix, c.fix, c.args.join(' '));
    t.true(run.stderr.includes(`porter hold: ${c.code}: `), run.stderr);
    t.true(run.stderr.includes('fix: '), run.stderr);
  }
  // Without --json: the same on stderr, nothing on stdout.
  const plain = await porter(['hold', '127.0.0.1:80', '--rate', 'fast']);
  t.is(plain.code, 2);
  t.is(plain.stdout, '');
  t.regex(plain.stderr, /^porter hold: ERR_INVALID_ARG_VALUE: --rate must be a number/);
  // An unknown command.
  const unknown = await porter(['hodl']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /ERR_UNKNOWN_COMMAND/);
  t.regex(unknown.stderr, /hold/);
});

test('every command has --help with examples, exit code 0', async (t) => {
  for (const command of [[], ['doctor'], ['hold'], ['inspect'], ['demo']]) {
    const run = await porter([...command, '--help']);
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /^Usage: porter/);
    t.regex(run.stdout, /Examples:\n {2}porter /);
  }
});
