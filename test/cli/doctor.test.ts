import { fileURLToPath } from 'node:url';
import test from 'ava';
import { bin, inNetns, lastJson } from './helpers.js';

const script = fileURLToPath(new URL('./fixtures/doctor-readonly.mjs', import.meta.url));

interface Finding {
  id: string;
  status: 'ok' | 'warn' | 'info';
  value: string;
  message: string;
  fix?: string;
}

interface Report {
  settings: {
    ip_local_port_range: [number, number];
    ip_local_reserved_ports: [number, number][];
    tcp_tw_reuse: number;
    tcp_timestamps: number;
    open_files: { soft: number | 'unlimited'; hard: number | 'unlimited' };
  };
  capacity: {
    porter: { range: [number, number]; explicit: number; kernel: number; per_destination: number; total: number };
    kernel_alone: { per_destination: number; per_source_address: number; total: number };
    destinations: number;
  };
  findings: Finding[];
}

const finding = (r: Report, id: string): Finding | undefined => r.findings.find((f) => f.id === id);

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
  const r = lastJson<Report>(run.stdout);
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
  // 4 destinations of 10,999 ports each, plus 1024 to spare.
  t.like(finding(r, 'open_files'), { status: 'warn', value: 'soft 4000, hard 4000', fix: 'ulimit -n 45020' });
  // Porter's range 30000-40499 overlaps the ephemeral 40000-40999 and the reserved 40100-40199.
  t.like(finding(r, 'ip_local_port_range'), { status: 'info' });
  t.like(finding(r, 'ip_local_reserved_ports'), { status: 'info', fix: 'porter hold ... --range system' });

  // Capacity: porter hands out its 10,500 ports per destination, and the kernel fallback
  // the ephemeral ports outside porter's range that are not reserved (40500-40999 less 40500).
  t.is(r.capacity.porter.explicit, 10_500);
  t.is(r.capacity.porter.kernel, 499);
  t.is(r.capacity.porter.per_destination, 10_999);
  t.is(r.capacity.porter.total, 4000, 'four destinations, but only 4000 descriptors');
  t.is(r.capacity.kernel_alone.per_destination, 1000 - 101);
  t.is(r.capacity.destinations, 4);
});

test('doctor: nothing to change exits 0; it changes no setting; the report for people has the fixes', async (t) => {
  const good = await inNetns(t, ['doctor', '--json', '--range', '1024-9999', '--no-fallback'], {
    sysctls: { 'net.ipv4.tcp_tw_reuse': 1, 'net.ipv4.tcp_timestamps': 1, 'net.ipv4.ip_local_reserved_ports': '' },
    setup: ['ulimit -n 20000'],
  });
  t.is(good.code, 0, good.stderr);
  const r = lastJson<Report>(good.stdout);
  t.deepEqual(
    r.findings.filter((f) => f.status !== 'ok'),
    [],
  );
  t.deepEqual(r.settings.ip_local_reserved_ports, []);
  t.is(r.capacity.porter.explicit, 8976);

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
