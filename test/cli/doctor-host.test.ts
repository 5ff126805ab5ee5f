/**
 * `porter doctor` sees the host, from the kernel: other processes' connections per
 * destination with the ports each has left, the listening services in porter's range
 * with the ip_local_reserved_ports line that protects them, and connection tracking and
 * NAT. Each in a network namespace of its own, the doctor run as the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DoctorReport, Finding } from '@porter/cli';
import test, { type ExecutionContext } from 'ava';
import { bin, inNetns, porter } from '../helpers/cli.js';
import { withoutServicePorts } from '../helpers/ports.js';
import { programsMissing, testIf, which } from '../helpers/requirements.js';
import { lastJson, type RunResult } from '../helpers/run.mjs';

const fixture = fileURLToPath(new URL('./fixtures/doctor-host.mjs', import.meta.url));
const netfilter = '/proc/sys/net/netfilter';

interface Held {
  plainPorts: number[];
  closedPorts: number[];
  porterPorts: number[];
}

interface FixtureOut {
  port: number;
  port2: number;
  held: Held;
  runs: RunResult[];
  afterReserve: { command: string; run: RunResult } | null;
}

const finding = (r: DoctorReport, id: string): Finding | undefined => r.findings.find((f) => f.id === id);

/** The fixture in a namespace of its own: a holder of connections, services, and the doctor runs. */
async function hostRun(
  t: ExecutionContext,
  config: object,
  options: { sysctls?: Record<string, string | number>; setup?: string[] } = {},
): Promise<FixtureOut> {
  const res = await inNetns(t, [JSON.stringify(config), bin], { script: fixture, ...options });
  t.is(res.code, 0, `the fixture ran: ${res.stderr}`);
  return lastJson<FixtureOut>(res.stdout);
}

/** The host's own conntrack numbers that every namespace shares (max, buckets), or null. */
function hostConntrack(): { max: number; buckets: number } | null {
  if (!existsSync(`${netfilter}/nf_conntrack_max`)) return null;
  const read = (name: string): number => Number(readFileSync(`${netfilter}/nf_conntrack_${name}`, 'utf8'));
  return { max: read('max'), buckets: read('buckets') };
}

/**
 * Whether the doctor saw nf_conntrack as the host has it: loaded before the run (a module
 * is never unloaded by a test), it must see the host's numbers; not loaded before, it may
 * have been loaded meanwhile (the NAT test's rule loads it on a kernel with modules), and
 * the doctor saw it either way.
 */
function conntrackSeen(
  t: ExecutionContext,
  before: ReturnType<typeof hostConntrack>,
  c: DoctorReport['conntrack'],
): boolean {
  const after = hostConntrack();
  if (before === null && c.max === null) {
    t.like(c, { max: null, count: null, buckets: null, tracking: null });
    t.regex(c.reason ?? '', /^nf_conntrack is not loaded/);
    return false;
  }
  t.like(c, { max: after?.max, buckets: after?.buckets, reason: null });
  return true;
}

// A 1,000-port ephemeral range with 500 reserved; porter's range 30000-40999 binds
// 30000-39999 itself (10,000 ports) and leaves the 500 others to the kernel.
const sysctls = {
  'net.ipv4.ip_local_port_range': '40000 40999',
  'net.ipv4.ip_local_reserved_ports': '40100-40599',
  'net.ipv4.tcp_tw_reuse': 1,
};
const doctorRange = ['--range', '30000-40999'];
// Of those 10,000, porter leaves out the ports /etc/services names (servicePorts 'avoid').
const own = withoutServicePorts(30000, 39999);
const ownPorts = own.reduce((n, [a, b]) => n + b - a + 1, 0);

/** Listening services: the one on a port porter binds is unprotected, with the line. */
function listenersProtected(t: ExecutionContext, r: DoctorReport, out: FixtureOut): void {
  const listeners = r.listeners;
  t.deepEqual(
    listeners?.ports.map((p) => [p.port, p.in_porter_range, p.porter_binds, p.reserved]),
    [
      [35432, true, true, false],
      ...[40150, 40700, out.port, out.port2].sort((a, b) => a - b).map((p) => [p, true, false, p === 40150]),
    ],
  );
  t.deepEqual(listeners?.unprotected, [35432]);
  t.is(listeners?.reserved_ports, '35432,40100-40599');
  t.is(
    listeners?.command,
    "sysctl -w net.ipv4.ip_local_reserved_ports=35432,40100-40599 && echo 'net.ipv4.ip_local_reserved_ports = 35432,40100-40599' > /etc/sysctl.d/60-porter-reserved.conf",
  );
  t.like(finding(r, 'listeners'), { status: 'warn', value: '35432', fix: listeners?.command ?? '' });
  t.is(r.findings.filter((f) => f.status === 'warn').length, 1, JSON.stringify(r.findings));

  // The line, applied: the doctor is content, and a Porter made now never binds 35432.
  t.is(out.afterReserve?.command, 'sysctl -w net.ipv4.ip_local_reserved_ports=35432,40100-40599');
  const after = lastJson<DoctorReport>(out.afterReserve?.run.stdout ?? '');
  t.is(out.afterReserve?.run.code, 0, out.afterReserve?.run.stderr);
  t.deepEqual(after.listeners?.unprotected, []);
  t.like(finding(after, 'listeners'), { status: 'ok' });
  t.deepEqual(
    after.capacity.porter?.explicit_ports,
    own.flatMap(([a, b]) =>
      a <= 35432 && 35432 <= b
        ? ([
            [a, 35431],
            [35433, b],
          ].filter(([x, y]) => (x as number) <= (y as number)) as [number, number][])
        : [[a, b] as [number, number]],
    ),
  );
  t.is(after.sockets.porter_ports, ownPorts - 1);
}

test("doctor lists another process's connections per destination, with the ports left in the kernel's range and porter's; and the services in porter's range with the line that protects them", async (t) => {
  const conntrackBefore = hostConntrack();
  const out = await hostRun(
    t,
    {
      // 460 plain connections to the first server (10 of them then closed by the client
      // first: TIME_WAIT), 100 through a Porter of 30000-39999, 20 plain ones to the second.
      holder: { plain: 460, closeFirst: 10, porter: 100, range: [30000, 39999], second: 20 },
      // A service among the ports porter binds, one on a reserved port, one in the ephemeral range.
      services: [35432, 40150, 40700],
      runs: [
        ['--json', ...doctorRange],
        [...doctorRange, '--top', '1'],
      ],
      applyReserved: true,
    },
    { sysctls },
  );
  const [json, text] = out.runs as [RunResult, RunResult];
  t.is(json.code, 1, `the unprotected service is a finding: exit 1\n${json.stderr}`);
  const r = lastJson<DoctorReport>(json.stdout);
  t.true(out.held.porterPorts.every((p) => p >= 30000 && p <= 39999));
  t.true(out.held.plainPorts.every((p) => p >= 40000 && p <= 40999 && (p < 40100 || p > 40599)));

  // Every connection of the namespace, from the kernel: the holder's, none of porter's pools.
  t.like(r.sockets, {
    source: 'sock_diag',
    reason: null,
    connections: 580,
    destinations: 2,
    incoming: 570,
    kernel_ports: 500,
    porter_ports: ownPorts,
  });
  const [first, second] = r.destinations ?? [];
  // The listeners' ports are taken too: the two servers' (kernel picks in the ephemeral
  // range) and 40700 in the kernel's range, 35432 in porter's.
  t.deepEqual(first, {
    destination: `127.0.0.1:${out.port}`,
    connections: 560,
    states: {
      established: 550,
      syn_sent: 0,
      syn_recv: 0,
      fin_wait1: 0,
      fin_wait2: 0,
      time_wait: 10,
      close_wait: 0,
      last_ack: 0,
      closing: 0,
    },
    local_addresses: ['127.0.0.1'],
    ports_left: { kernel: 500 - 460 - 3, porter: ownPorts - 100 - 1 },
  });
  t.like(second, {
    destination: `127.0.0.1:${out.port2}`,
    connections: 20,
    states: { established: 20, time_wait: 0 },
    ports_left: { kernel: 500 - 20 - 3, porter: ownPorts - 1 },
  });
  // Less than 10 % of the kernel's range left towards the first: worth knowing.
  t.like(finding(r, 'connections'), { status: 'info', value: '580 to 2 destination(s) (sock_diag)' });
  t.regex(
    finding(r, 'connections')?.message ?? '',
    new RegExp(
      `^1 destination has less than 10 % of the kernel's 500 ports left: 127\\.0\\.0\\.1:${out.port} \\(37 left\\)`,
    ),
  );

  listenersProtected(t, r, out);

  // For people: the busiest destination only (--top 1), the protecting line, the NAT note.
  t.is(text.code, 1, text.stderr);
  t.regex(
    text.stdout,
    new RegExp(
      `127\\.0\\.0\\.1:${out.port} +│ +560 │ +550 │ +10 │ +0 │ +37 │ +${(ownPorts - 101).toLocaleString('en-US')} │`,
    ),
  );
  t.false(text.stdout.includes(`127.0.0.1:${out.port2}`));
  t.regex(text.stdout, /\(the 1 busiest of 2 destinations: --top 2 shows them all, --json lists every one\)/);
  t.regex(text.stdout, /Keep porter off them: sysctl -w net\.ipv4\.ip_local_reserved_ports=35432,40100-40599/);
  t.regex(text.stdout, /A fleet behind a NAT gateway shares 64,512 ports per public address per destination/);

  // Connection tracking in a fresh namespace: the host's table size, nothing tracked here.
  if (conntrackSeen(t, conntrackBefore, r.conntrack)) {
    t.like(r.conntrack, { count: 0, usage: 0, tracking: false });
    t.like(r.conntrack.nat, { outgoing: false, evidence: [] });
    t.true(r.conntrack.nat.checked.includes('conntrack table (0 entries)'), r.conntrack.nat.checked.join());
  }
});

testIf(programsMissing({ nft: which('nft') }))(
  'doctor sees conntrack tracking a namespace whose outgoing connections are source-NATed, from the table and the ruleset',
  async (t) => {
    const nft = which('nft') as string;
    const ruleset =
      'table ip porter_doctor { chain post { type nat hook postrouting priority 100; ip daddr 127.0.0.1 snat to 127.0.0.5; }; }';
    const out = await hostRun(
      t,
      { holder: { plain: 50, closeFirst: 0, porter: 0, range: [30000, 39999], second: 0 }, runs: [['--json']] },
      { sysctls, setup: [`printf '%s\\n' '${ruleset}' | ${nft} -f -`] },
    );
    const r = lastJson<DoctorReport>(out.runs[0]?.stdout ?? '');
    t.like(r.destinations?.[0], { destination: `127.0.0.1:${out.port}`, connections: 50 });
    const c = r.conntrack;
    t.is(c.reason, null);
    t.true((c.count ?? 0) >= 50, `${c.count} entries for 50 connections`);
    t.is(c.tracking, true);
    t.is(c.nat.outgoing, true);
    t.true(
      c.nat.evidence.some((e) => /^conntrack: \d+ of \d+ entries have their source rewritten/.test(e)),
      c.nat.evidence.join('\n'),
    );
    t.true(c.nat.evidence.some((e) => e.includes('leaves as 127.0.0.5')));
    t.true(
      c.nat.evidence.some((e) => /^nft: .*snat to 127\.0\.0\.5/.test(e)),
      c.nat.evidence.join('\n'),
    );
    t.like(finding(r, 'nat'), { status: 'info', value: 'yes' });
    t.regex(finding(r, 'nat')?.message ?? '', /64,512 ports of each public address per destination/);
  },
);

test('doctor without nf_conntrack: its fields are null, with the reason', async (t) => {
  // What a host without the module shows: no /proc/sys/net/netfilter files (a tmpfs over
  // the folder, in a mount namespace of this test's own).
  const setup = existsSync(netfilter) ? [`mount -t tmpfs none ${netfilter}`] : [];
  const res = await inNetns(t, ['doctor', '--json'], { privateMounts: true, setup });
  const r = lastJson<DoctorReport>(res.stdout);
  t.like(r.conntrack, { max: null, count: null, buckets: null, usage: null, tracking: null });
  t.regex(r.conntrack.reason ?? '', /^nf_conntrack is not loaded \(no \/proc\/sys\/net\/netfilter/);
  t.like(finding(r, 'nf_conntrack'), { status: 'info', value: 'unknown' });
  const text = await inNetns(t, ['doctor'], { privateMounts: true, setup });
  t.regex(text.stdout, /Connection tracking \(nf_conntrack is not loaded/);
  t.regex(text.stdout, /nf_conntrack_max \(whole host\) +│ unknown/);
});

testIf(programsMissing({ setpriv: which('setpriv') }))(
  'doctor as another user than root: the sockets and the conntrack numbers, NAT unknown with the reason',
  async (t) => {
    const before = hostConntrack();
    const res = await inNetns(t, ['doctor', '--json'], {
      prefix: [which('setpriv') as string, '--reuid=65534', '--regid=65534', '--clear-groups'],
    });
    const r = lastJson<DoctorReport>(res.stdout);
    t.is(r.sockets.source, 'sock_diag', 'sock_diag needs no privilege');
    t.deepEqual(r.destinations, []);
    t.is(r.conntrack.nat.outgoing, null);
    t.regex(r.conntrack.nat.reason ?? '', /nft and iptables rulesets: root only/);
    if (conntrackSeen(t, before, r.conntrack)) {
      t.is(r.conntrack.count, 0);
      t.regex(r.conntrack.nat.reason ?? '', /conntrack table: \/proc\/net\/nf_conntrack: EACCES \(root only\)/);
    }
    t.like(finding(r, 'nat'), { status: 'info', value: 'unknown' });
  },
);

test('doctor --top: a count from 1, or exit 2 with the code, the argument and the fix', async (t) => {
  for (const top of ['0', 'ten', '2000000']) {
    const run = await porter(['doctor', '--top', top, '--json']);
    t.is(run.code, 2, `--top ${top}: ${run.stderr}`);
    const { error } = lastJson<{ error: { code: string; argument: string; fix: string } }>(run.stdout);
    t.like(error, { code: 'ERR_INVALID_ARG_VALUE', argument: '--top', fix: 'pass e.g. --top 50' });
  }
});
