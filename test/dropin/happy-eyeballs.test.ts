/**
 * porter.connect and createConnection try every address of a name as net.connect does
 * in Node 20 (happy eyeballs): in a network namespace the test makes, a lookup answering
 * [a black hole, 127.0.0.1] connects through the second address once the attempt
 * timeout (250 ms) passed, as net.connect does, and gives the first attempt's port back;
 * `localhost` answering ::1 first, with a server on 127.0.0.1 only, connects at once.
 */
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/happy-eyeballs.ts', import.meta.url));
const nsTest = testIf(netnsUnavailableReason());

interface Timed {
  ms: number;
  remote?: string;
  lease?: number;
  error?: { code?: string; name: string; errors?: number };
}

nsTest('every address, the families alternating, each for the attempt timeout: as net.connect', async (t) => {
  const run = await runInNetns(script, [], { setup: ['ip route add 198.51.100.0/24 dev lo'], timeoutMs: 30_000 });
  t.is(run.code, 0, run.stderr);
  const r = lastJson<Record<string, unknown>>(run.stdout);
  t.log(JSON.stringify(r));
  const blackHole = r.blackHoleFirst as Timed;
  t.is(blackHole.remote, '127.0.0.1', 'connected through the second address');
  t.true(blackHole.ms >= 240 && blackHole.ms < 1_500, `${blackHole.ms} ms`);
  const net = r.netBlackHoleFirst as Timed;
  t.is(net.remote, '127.0.0.1');
  t.true(Math.abs(blackHole.ms - net.ms) < 200, `porter ${blackHole.ms} ms, net ${net.ms} ms`);
  const pool = r.blackHolePool as { inUse: number[]; aging: unknown[] };
  t.deepEqual(pool.inUse, [], 'the abandoned attempt gave its port back');
  t.is(pool.aging.length, 1, 'into aging: its SYN left');

  const ipv6 = r.ipv6First as Timed;
  t.is(ipv6.remote, '127.0.0.1');
  t.true(ipv6.ms < 200, `${ipv6.ms} ms`);
  t.truthy(ipv6.lease);

  t.deepEqual(r.events, ['attempt 198.51.100.7', 'timeout 198.51.100.7', 'attempt 127.0.0.1', 'connect']);
  const attempted = r.attempted as string[];
  t.deepEqual(
    attempted.map((a) => a.slice(0, a.lastIndexOf(':'))),
    ['198.51.100.7', '127.0.0.1'],
  );

  const all = r.allRefused as Timed['error'];
  t.is(all?.name, 'AggregateError');
  t.is(all?.code, 'ECONNREFUSED');
  t.is(all?.errors, 2);
  const first = r.firstOnly as Timed['error'];
  t.is(first?.code, 'ECONNREFUSED');
  t.not(first?.name, 'AggregateError', 'one address tried');
  t.is(r.inUseAtEnd, 0);
});
