import { fileURLToPath } from 'node:url';
import test from 'ava';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.js';

const script = fileURLToPath(new URL('./fixtures/netns-exhaustion.mjs', import.meta.url));

interface Result {
  range: [number, number];
  listeners: number[];
  kernel: { connected: number; ports: number[]; error?: { code: string; syscall: string } };
  porter: {
    open: number;
    portsA: number[];
    portsB: number[];
    error?: { code: string; message: string };
    inUse: { remotePort: number; inUse: number[] }[];
  };
}

test('in a namespace with 10 ephemeral ports: the kernel runs out at ~10, porter opens 10 per destination', async (t) => {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) {
    t.log(`skipped: ${reason}`);
    t.pass();
    return;
  }
  const first = 40_000;
  const last = 40_009;
  const run = await runInNetns(script, [`${first} ${last}`], {
    sysctls: {
      // Listeners get ports from here first; the script then sets [first, last].
      'net.ipv4.ip_local_port_range': '50000 50999',
      'net.ipv4.tcp_tw_reuse': 0,
    },
    timeoutMs: 45_000,
  });
  t.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Result;
  t.log(
    `kernel: ${result.kernel.connected} connections then ${result.kernel.error?.syscall} ${result.kernel.error?.code}; ` +
      `porter: ${result.porter.open} open, then ${result.porter.error?.code}`,
  );
  const expected = Array.from({ length: last - first + 1 }, (_, i) => first + i);

  // The kernel: one ephemeral port per bound socket, whatever the destination.
  t.is(result.kernel.connected, expected.length);
  t.deepEqual(
    [...result.kernel.ports].sort((a, b) => a - b),
    expected,
  );
  t.truthy(result.kernel.error, 'the kernel ran out');
  t.regex(result.kernel.error?.code ?? '', /^(EADDRINUSE|EADDRNOTAVAIL)$/);

  // Porter: the same 10 ports to each destination, 20 connections open at once.
  t.is(result.porter.open, 2 * expected.length);
  t.deepEqual(
    [...result.porter.portsA].sort((a, b) => a - b),
    expected,
  );
  t.deepEqual(
    [...result.porter.portsB].sort((a, b) => a - b),
    expected,
  );
  t.is(result.porter.error?.code, 'ERR_PORTER_EXHAUSTED');
  t.regex(result.porter.error?.message ?? '', new RegExp(`${first}\\D+${last}`));
  for (const pool of result.porter.inUse) t.deepEqual(pool.inUse, expected);
});
