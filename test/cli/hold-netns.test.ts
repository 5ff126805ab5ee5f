import { fileURLToPath } from 'node:url';
import test from 'ava';
import { bin, type HoldJson, inNetns, lastJson } from './helpers.js';

const script = fileURLToPath(new URL('./fixtures/hold-in-netns.mjs', import.meta.url));

interface Result {
  target: string;
  one: { code: number; stderr: string; report: HoldJson };
  three: { code: number; stderr: string; report: HoldJson };
}

test('in a namespace, a range of 10 ports: one --local address opens 10, three open 30', async (t) => {
  // The namespace has a port space of its own, so a fixed range is free there.
  const run = await inNetns(t, [bin, '40000-40009', '30'], {
    script,
    // TIME_WAIT from the first run must not stop the second from reusing the 4-tuples.
    sysctls: { 'net.ipv4.ip_local_port_range': '50000 50999', 'net.ipv4.tcp_tw_reuse': 1 },
  });
  t.is(run.code, 0, run.stderr);
  const { target, one, three } = lastJson<Result>(run.stdout);

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
