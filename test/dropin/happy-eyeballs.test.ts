/**
 * porter.connect and createConnection try every address of a name as net.connect does
 * in Node 20 (happy eyeballs): in a network namespace the test makes, a lookup answering
 * [a black hole, 127.0.0.1] connects through the second address once the first attempt
 * ended at its attempt timeout (ETIMEDOUT, counted by the core; net's events in net's
 * order), and gives the first attempt's port back; `localhost` answering ::1 first, with
 * a server on 127.0.0.1 only, moves on at the refusal, without an attempt timeout.
 */
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/happy-eyeballs.ts', import.meta.url));
const nsTest = testIf(netnsUnavailableReason());

interface Connected {
  remote?: string;
  lease?: number;
  error?: { code?: string; name: string; errors?: number };
  /** The connect errors porter counted meanwhile, by code. */
  errors: Record<string, number>;
}
interface Attempts {
  events: string[];
  attempted?: string[];
}

nsTest('every address, the families alternating, each for the attempt timeout: as net.connect', async (t) => {
  const run = await runInNetns(script, [], { setup: ['ip route add 198.51.100.0/24 dev lo'], timeoutMs: 30_000 });
  t.is(run.code, 0, run.stderr);
  const r = lastJson<Record<string, unknown>>(run.stdout);
  t.log(JSON.stringify(r));
  // The black hole first: its attempt ends at the attempt timeout, then the next address.
  const blackHole = r.blackHoleFirst as Connected;
  t.is(blackHole.remote, '127.0.0.1', 'connected through the second address');
  t.deepEqual(blackHole.errors, { ETIMEDOUT: 1 }, 'the first attempt ended at its timeout');
  const pool = r.blackHolePool as { inUse: number[]; aging: unknown[] };
  t.deepEqual(pool.inUse, [], 'the abandoned attempt gave its port back');
  t.is(pool.aging.length, 1, 'into aging: its SYN left');
  const expected = ['attempt 198.51.100.7', 'timeout 198.51.100.7', 'attempt 127.0.0.1', 'connect'];
  t.deepEqual((r.porterEvents as Attempts).events, expected);
  t.deepEqual((r.netEvents as Attempts).events, expected, 'as net.connect');
  const attempted = (r.porterEvents as Attempts).attempted ?? [];
  t.deepEqual(
    attempted.map((a) => a.slice(0, a.lastIndexOf(':'))),
    ['198.51.100.7', '127.0.0.1'],
  );

  // ::1 refuses at once: the next address without waiting for the attempt timeout.
  const ipv6 = r.ipv6First as Connected;
  t.is(ipv6.remote, '127.0.0.1');
  t.truthy(ipv6.lease);
  t.deepEqual(ipv6.errors, { ECONNREFUSED: 1 }, 'refused, not timed out');
  const refusedFirst = ['attempt ::1', 'failed ::1', 'attempt 127.0.0.1', 'connect'];
  t.deepEqual((r.porterIpv6Events as Attempts).events, refusedFirst);
  t.deepEqual((r.netIpv6Events as Attempts).events, refusedFirst, 'as net.connect');

  const all = r.allRefused as Connected['error'];
  t.is(all?.name, 'AggregateError');
  t.is(all?.code, 'ECONNREFUSED');
  t.is(all?.errors, 2);
  const first = r.firstOnly as Connected['error'];
  t.is(first?.code, 'ECONNREFUSED');
  t.not(first?.name, 'AggregateError', 'one address tried');
  t.is(r.inUseAtEnd, 0);
});
