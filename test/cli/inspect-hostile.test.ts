/**
 * `porter inspect` against endpoints that try to turn it against its user, each a local
 * HTTP server started by the test: a body that never ends (the 64 MiB cap), one byte at a
 * time (the deadline on the whole read), a 50 MB label (memory stays bounded: the process
 * runs with a 128 MB heap), 300,000 series (no recursion per series), control characters
 * in labels (escaped in the JSON), and a redirect (not followed). Escape sequences on a
 * real terminal: tty.test.ts.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { porter } from '../helpers/cli.js';
import { lastJson } from '../helpers/run.mjs';
import { eventually } from '../helpers/wait.js';

/** A server on a free loopback port answering with `handler`; closed at the test's end. */
async function endpoint(
  t: ExecutionContext,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

/** A porter exposition with these pools (in use 1, aging 0, free 9 each). */
function exposition(remotes: string[], local = '0.0.0.0'): string {
  const lines = ['# TYPE porter_pools gauge', `porter_pools ${remotes.length}`, 'porter_allocations_total 5'];
  for (const [name, value] of [
    ['ports_in_use', 1],
    ['ports_aging', 0],
    ['ports_free', 9],
  ] as const) {
    lines.push(`# TYPE porter_${name} gauge`);
    for (const remote of remotes) lines.push(`porter_${name}{remote="${remote}",local="${local}"} ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

type ErrorJson = { error: { code: string; message: string } };

test('a body that never ends: read up to 64 MiB, then a clear error and exit 1', async (t) => {
  const seen = { sent: 0, closedWhileSending: false };
  const url = await endpoint(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.from('# more\n'.repeat(1 << 16));
    const pump = (): void => {
      while (!res.destroyed && seen.sent < 1 << 30) {
        seen.sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    res.once('close', () => {
      seen.closedWhileSending = !res.writableEnded;
    });
    pump();
  });
  const run = await porter(['inspect', url, '--json']);
  t.is(run.code, 1, run.stderr);
  const { error } = lastJson<ErrorJson>(run.stdout);
  t.is(error.code, 'ERR_PORTER_METRICS_TOO_LARGE');
  t.regex(error.message, /answered more than 64 MiB/);
  t.regex(run.stderr, /^porter inspect: .* answered more than 64 MiB/m);
  t.notRegex(run.stderr, /RangeError|at /);
  t.true(await eventually(() => seen.closedWhileSending), 'porter closed the connection while the server was sending');
  t.true(seen.sent >= 64 * 1024 * 1024);
});

test('one byte at a time: --timeout bounds the whole read, not the silence between bytes', async (t) => {
  const seen = { bytes: 0, closedWhileSending: false };
  const url = await endpoint(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => {
      seen.bytes++;
      res.write('#');
    }, 100);
    const stop = setTimeout(() => res.end('\n'), 60_000);
    res.once('close', () => {
      clearInterval(timer);
      clearTimeout(stop);
      seen.closedWhileSending = !res.writableEnded;
    });
  });
  const run = await porter(['inspect', url, '--timeout', '1000', '--json'], { timeoutMs: 30_000 });
  t.false(run.timedOut, 'porter inspect ended by itself');
  t.is(run.code, 1, run.stderr);
  const { error } = lastJson<ErrorJson>(run.stdout);
  t.is(error.code, 'ETIMEDOUT');
  t.regex(error.message, /no complete answer within 1000 ms \(--timeout\)/);
  t.true(await eventually(() => seen.closedWhileSending), 'the server was still sending when porter gave up');
  t.true(seen.bytes > 0);
});

test('a 50 MB label: refused in a porter series, passed over elsewhere, in a 128 MB heap', async (t) => {
  const huge = 'x'.repeat(50 * 1024 * 1024);
  const ours = await endpoint(t, (_req, res) => {
    res.end(`porter_pools 1\nporter_ports_in_use{remote="${huge}",local="0.0.0.0"} 1\n`);
  });
  const env = { ...process.env, NO_COLOR: '1', NODE_OPTIONS: '--max-old-space-size=128' };
  const refused = await porter(['inspect', ours, '--json'], { env });
  t.is(refused.code, 1, refused.stderr);
  const { error } = lastJson<ErrorJson>(refused.stdout);
  t.is(error.code, 'ERR_PORTER_METRICS_FORMAT');
  t.regex(error.message, /line 2 is a porter_\* sample longer than 64 KiB/);

  const elsewhere = await endpoint(t, (_req, res) => {
    res.end(`app_info{build="${huge}"} 1\n${exposition(['10.0.0.1:443'])}`);
  });
  const read = await porter(['inspect', elsewhere, '--json'], { env });
  t.is(read.code, 0, read.stderr);
  const state = lastJson<{ pools: { remote: string; in_use: number }[] }>(read.stdout);
  t.deepEqual(
    state.pools.map((p) => [p.remote, p.in_use]),
    [['10.0.0.1:443', 1]],
  );
});

test('300,000 series: all in the JSON; the table shows the 100 busiest pools and sums the rest', async (t) => {
  const remotes = Array.from({ length: 100_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:80`);
  const body = exposition(remotes);
  const url = await endpoint(t, (_req, res) => res.end(body));
  const json = await porter(['inspect', url, '--json']);
  t.is(json.code, 0, json.stderr);
  const state = lastJson<{ pools: unknown[]; counters: { pools: number } }>(json.stdout);
  t.is(state.pools.length, 100_000);
  t.is(state.counters.pools, 100_000);
  const text = await porter(['inspect', url]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /100,000 pools, 100,000 ports in use, 0 aging/);
  t.regex(text.stdout, /│ 99,900 other pools +│ +│ +99,900 │ +0 │ +899,100 │/);
  t.is(text.stdout.match(/│ 10\.\d+\.\d+\.\d+:80 /g)?.length, 100);
});

test('control characters in labels: the JSON escapes them and reads back to the same text', async (t) => {
  const label = 'evil\u001b]2;PWNED\u0007\u001b[2J\u009b31m\u202e';
  const url = await endpoint(t, (_req, res) => res.end(exposition([label])));
  const run = await porter(['inspect', url, '--json']);
  t.is(run.code, 0, run.stderr);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
  t.false(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(run.stdout), JSON.stringify(run.stdout));
  t.is(lastJson<{ pools: { remote: string }[] }>(run.stdout).pools[0]?.remote, label);
  const text = await porter(['inspect', url]);
  t.is(text.code, 0, text.stderr);
  t.true(text.stdout.includes('evil\\x1b]2;PWNED\\x07\\x1b[2J\\x9b31m\\u202e'), text.stdout);
  t.false(text.stdout.includes('\u001b'));
});

test('a redirect is not followed: exit 1 with the status and where it pointed', async (t) => {
  let followed = 0;
  const url = await endpoint(t, (req, res) => {
    if (req.url === '/elsewhere') {
      followed++;
      res.end(exposition(['10.0.0.1:443']));
    } else {
      res.writeHead(302, { location: '/elsewhere' }).end();
    }
  });
  const run = await porter(['inspect', url, '--json']);
  t.is(run.code, 1, run.stderr);
  const { error } = lastJson<ErrorJson>(run.stdout);
  t.is(error.code, 'HTTP_302');
  t.regex(error.message, /redirects are not followed; .* \(it points to \/elsewhere\)/);
  t.is(followed, 0);
});
