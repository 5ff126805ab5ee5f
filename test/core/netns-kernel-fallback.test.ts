// The kernel fallback binds with IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at
// connect knowing the destination (docs/ARCHITECTURE.md, "Connect"). Told apart from a
// plain bind(ip, 0) in a namespace whose tiny ephemeral range is used up towards one
// destination: bind(ip, 0) finds no port there, the fallback still connects elsewhere.
// (A range used up by bind(ip, 0) sockets would stop both: the kernel never shares a
// port that was bound explicitly.)
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/netns-kernel-fallback.mjs', import.meta.url));

interface Failure {
  code: string;
  syscall?: string;
  message: string;
}

interface Result {
  range: [number, number];
  porterRange: [number, number];
  fill: { ports: number[]; error?: Failure };
  plainBind: { port?: number; error?: Failure };
  porter: {
    ports: number[];
    open: number;
    error?: Failure;
    kernelFallbacks: number;
    exhausted: number;
    inUse: number[];
    held: number[];
  };
  sourced: { port?: number; address?: string; kernelFallbacks?: number; error?: Failure };
}

const sorted = (ports: number[]): number[] => [...ports].sort((x, y) => x - y);

testIf(netnsUnavailableReason())(
  'the fallback connects where bind(ip, 0) finds no port: the kernel chooses at connect',
  async (t) => {
    const [first, last] = [40_000, 40_009];
    const run = await runInNetns(script, [`${first} ${last}`, '20000 20000'], {
      sysctls: { 'net.ipv4.ip_local_port_range': '50000 50999' },
      timeoutMs: 45_000,
    });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Result>(run.stdout);
    t.log(JSON.stringify(r));
    const range = Array.from({ length: last - first + 1 }, (_, i) => first + i);

    // The kernel's range carries a connection to A on every port; an 11th finds none.
    t.deepEqual(sorted(r.fill.ports), range);
    t.is(r.fill.error?.code, 'EADDRNOTAVAIL');
    // So bind(ip, 0) fails, whatever the destination.
    t.is(r.plainBind.port, undefined, 'bind(127.0.0.1, 0) found a port');
    t.is(r.plainBind.error?.code, 'EADDRINUSE');

    // porter's fallback: the same ten ports again, now towards B, all open at once.
    t.deepEqual(r.porter.held, [20_000]);
    t.deepEqual(sorted(r.porter.ports), range);
    t.is(r.porter.open, range.length);
    t.is(r.porter.kernelFallbacks, range.length);
    // Tracked in B's pool beside porter's own port.
    t.deepEqual(r.porter.inUse, [20_000, ...range]);
    // Then the kernel has none left for B either.
    t.is(r.porter.error?.code, 'ERR_PORTER_EXHAUSTED');
    t.regex(r.porter.error?.message ?? '', /kernel's choice failed too/);
    t.is(r.porter.exhausted, 1);

    // From a given source address too.
    t.is(r.sourced.error, undefined, r.sourced.error?.message);
    t.is(r.sourced.address, '127.0.0.1');
    t.true(range.includes(r.sourced.port ?? 0), `port ${r.sourced.port}`);
    t.is(r.sourced.kernelFallbacks, 1);
  },
);
