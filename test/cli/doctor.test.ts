import { fileURLToPath } from 'node:url';
import type { DoctorReport, Finding } from '@porter/cli';
import test from 'ava';
import { bin, inNetns } from '../helpers/cli.js';
import { withoutServicePorts } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/doctor-readonly.mjs', import.meta.url));

const finding = (r: DoctorReport, id: string): Finding | undefined => r.findings.find((f) => f.id === id);

test("doctor --json reports the namespace's own settings, and a fix for each one to change", async (t) => {
  const sysctls = {
    'net.ipv4.ip_local_port_range': '40000 40999',
    'net.ipv4.ip_local_reserved_ports': '40100-40199,40500',
    'net.ipv4.tcp_tw_reuse': 0,
    'net.ipv4.tcp_timestamps': 0,
  };
  const run = await inNetns(t, ['doctor', '--json', '--range', '30000-40499', '--destinations', '4'], {
    sysctls,
    // Node raises its soft limit to the hard one at start: the doctor sees 4000 for both.
    setup: ['ulimit -Sn 1000', 'ulimit -Hn 4000'],
  });
  t.is(run.code, 1, `something to change: exit 1\n${run.stderr}`);
  const r = lastJson<DoctorReport>(run.stdout);
  t.deepEqual(r.settings.ip_local_port_range, [40000, 40999]);
  t.deepEqual(r.settings.ip_local_reserved_ports, [
    [40100, 40199],
    [40500, 40500],
  ]);
  t.is(r.settings.tcp_tw_reuse, 0);
  t.is(r.settings.tcp_timestamps, 0);
  t.deepEqual(r.settings.open_files, { soft: 4000, hard: 4000 });

  t.like(finding(r, 'tcp_tw_reuse'), { status: 'warn', value: '0' });
  t.regex(finding(r, 'tcp_tw_reuse')?.fix ?? '', /^sysctl -w net\.ipv4\.tcp_tw_reuse=1/);
  t.like(finding(r, 'tcp_timestamps'), { status: 'warn', value: '0' });
  t.regex(finding(r, 'tcp_timestamps')?.fix ?? '', /^sysctl -w net\.ipv4\.tcp_timestamps=1/);
  // Porter's range 30000-40499 takes in the ephemeral 40000-40499 and the reserved 40100-40199.
  t.like(finding(r, 'ip_local_port_range'), { status: 'ok', value: '40000-40999 (1,000 ports)' });
  t.like(finding(r, 'ip_local_reserved_ports'), { status: 'ok', value: '40100-40199,40500' });

  // Capacity, mode hybrid: porter binds 30000-39999 itself, the kernel picks in 40000-40499
  // but the reserved 40100-40199, and the fallback in the rest of the ephemeral range but 40500.
  // (Less the ports /etc/services names, which porter leaves to services by default.)
  const porter = r.capacity.porter;
  const own = withoutServicePorts(30000, 39999);
  const explicit = own.reduce((n, [a, b]) => n + b - a + 1, 0);
  t.like(porter, {
    mode: 'hybrid',
    explicit_ports: own,
    kernel_window: [40000, 40499],
    explicit,
    kernel: 400,
    fallback: 499,
    per_destination: explicit + 899,
  });
  t.is(porter?.total, 4000, 'four destinations, but only 4000 descriptors');
  // 4 destinations of that many ports each, plus 1024 to spare.
  t.like(finding(r, 'open_files'), {
    status: 'warn',
    value: 'soft 4000, hard 4000',
    fix: `ulimit -n ${4 * (explicit + 899) + 1024}`,
  });
  t.is(r.capacity.kernel_alone.per_destination, 1000 - 101);
  t.is(r.capacity.destinations, 4);
});

test('doctor: nothing to change exits 0; it changes no setting; the report for people has the fixes', async (t) => {
  const good = await inNetns(t, ['doctor', '--json', '--range', '1024-9999', '--no-fallback'], {
    sysctls: { 'net.ipv4.tcp_tw_reuse': 1, 'net.ipv4.tcp_timestamps': 1, 'net.ipv4.ip_local_reserved_ports': '' },
    setup: ['ulimit -n 20000'],
  });
  t.is(good.code, 0, good.stderr);
  const r = lastJson<DoctorReport>(good.stdout);
  t.deepEqual(
    r.findings.filter((f) => f.status !== 'ok'),
    [],
  );
  t.deepEqual(r.settings.ip_local_reserved_ports, []);
  const own = withoutServicePorts(1024, 9999).reduce((n, [a, b]) => n + b - a + 1, 0);
  t.like(r.capacity.porter, { explicit: own, kernel: 0, fallback: 0, per_destination: own });

  // Read-only: no setting of the namespace differs after the doctor ran.
  const readonly = await inNetns(t, [bin], { script, sysctls: { 'net.ipv4.tcp_tw_reuse': 0 } });
  t.is(readonly.code, 0, readonly.stderr);
  const check = lastJson<{ code: number; settings: number; changed: string[] }>(readonly.stdout);
  t.is(check.code, 1, 'tcp_tw_reuse=0 is a finding');
  t.true(check.settings > 50, `${check.settings} settings compared`);
  t.deepEqual(check.changed, []);

  const text = await inNetns(t, ['doctor'], { sysctls: { 'net.ipv4.tcp_tw_reuse': 0 } });
  t.is(text.code, 1, text.stderr);
  t.regex(text.stdout, /WARN tcp_tw_reuse = 0/);
  t.regex(text.stdout, /fix: sysctl -w net\.ipv4\.tcp_tw_reuse=1/);
  t.regex(text.stdout, /porter doctor changed nothing/);
});

test("doctor --mode: pool's ports inside the ephemeral range are a finding; a mode that cannot run here is one too", async (t) => {
  const sysctls = { 'net.ipv4.ip_local_port_range': '40000 40999', 'net.ipv4.ip_local_reserved_ports': '' };
  const pool = await inNetns(t, ['doctor', '--json', '--mode', 'pool', '--range', '39990-40009'], { sysctls });
  const p = lastJson<DoctorReport>(pool.stdout);
  t.like(p.capacity.porter, {
    mode: 'pool',
    explicit_ports: [[39990, 40009]],
    kernel_window: null,
    explicit: 20,
    kernel: 0,
  });
  t.like(finding(p, 'ip_local_port_range'), {
    status: 'warn',
    fix: 'porter hold ... --mode hybrid, or --range 39990-39999',
  });
  t.is(pool.code, 1);

  const hybrid = await inNetns(t, ['doctor', '--json', '--range', '39990-40009', '--no-fallback'], { sysctls });
  const h = lastJson<DoctorReport>(hybrid.stdout);
  t.like(h.capacity.porter, {
    mode: 'hybrid',
    explicit_ports: [[39990, 39999]],
    kernel_window: [40000, 40009],
    explicit: 10,
    kernel: 10,
  });
  t.like(finding(h, 'ip_local_port_range'), { status: 'ok' });

  const kernel = await inNetns(t, ['doctor', '--json', '--mode', 'kernel', '--range', '30000-30009'], { sysctls });
  t.is(kernel.code, 1);
  const k = lastJson<DoctorReport>(kernel.stdout);
  t.is(k.capacity.porter, null);
  t.like(finding(k, 'mode'), {
    status: 'warn',
    value: 'kernel',
    fix: 'porter hold ... --mode hybrid, or --range 40000-40999',
  });
  t.regex(finding(k, 'mode')?.message ?? '', /no port in the kernel's ephemeral range 40000-40999/);

  // The kernel's features, as porter itself probes them.
  const { hostPorts } = await import('@porter/core');
  const features = hostPorts().features;
  t.deepEqual(k.kernel_features, {
    ip_bind_address_no_port: features.bindAddressNoPort,
    ip_local_port_range: features.localPortRange,
  });
  t.like(finding(k, 'kernel_ip_bind_address_no_port'), { value: features.bindAddressNoPort ? 'yes' : 'no' });
});
