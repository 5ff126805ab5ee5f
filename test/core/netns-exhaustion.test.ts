import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/netns-exhaustion.mjs', import.meta.url));

interface Result {
  range: [number, number];
  porterRange: [number, number];
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

testIf(netnsUnavailableReason())(
  'in a namespace with 10 ephemeral ports: the kernel runs out at 10, porter opens 10 per destination',
  async (t) => {
    const first = 40_000;
    const last = 40_009;
    // porter's range lies outside the ephemeral one: ports it binds explicitly.
    const [porterFirst, porterLast] = [20_000, 20_009];
    const run = await runInNetns(script, [`${first} ${last}`, `${porterFirst} ${porterLast}`], {
      sysctls: {
        // Listeners get ports from here first; the script then sets [first, last].
        'net.ipv4.ip_local_port_range': '50000 50999',
        'net.ipv4.tcp_tw_reuse': 0,
      },
      timeoutMs: 45_000,
    });
    t.is(run.code, 0, run.stderr);
    const result = lastJson<Result>(run.stdout);
    t.log(
      `kernel: ${result.kernel.connected} connections then ${result.kernel.error?.syscall} ${result.kernel.error?.code}; ` +
        `porter: ${result.porter.open} open, then ${result.porter.error?.code}`,
    );
    const expected = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const porterPorts = Array.from({ length: porterLast - porterFirst + 1 }, (_, i) => porterFirst + i);

    // The kernel: one ephemeral port per bound socket, whatever the destination.
    t.is(result.kernel.connected, expected.length);
    t.deepEqual(
      [...result.kernel.ports].sort((a, b) => a - b),
      expected,
    );
    t.truthy(result.kernel.error, 'the kernel ran out');
    t.is(result.kernel.error?.code, 'EADDRINUSE', 'bind(127.0.0.1, 0) found no port');

    // Porter: the same 10 ports to each destination, 20 connections open at once.
    t.is(result.porter.open, 2 * porterPorts.length);
    t.deepEqual(
      [...result.porter.portsA].sort((a, b) => a - b),
      porterPorts,
    );
    t.deepEqual(
      [...result.porter.portsB].sort((a, b) => a - b),
      porterPorts,
    );
    t.is(result.porter.error?.code, 'ERR_PORTER_EXHAUSTED');
    t.regex(result.porter.error?.message ?? '', new RegExp(`${porterFirst}\\D+${porterLast}`));
    t.is(result.porter.inUse.length, 2);
    for (const pool of result.porter.inUse) t.deepEqual(pool.inUse, porterPorts);
  },
);
