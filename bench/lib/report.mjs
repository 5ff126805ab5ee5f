/**
 * The targets, and docs/benchmarks.md written from one result object of bench/run.mjs.
 */

const num = (v) => typeof v === 'number' && Number.isFinite(v);

export function fmtRate(v) {
  if (!num(v)) return 'n/a';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k/s`;
  return `${v.toFixed(0)} /s`;
}
export const fmtRatio = (v) => (num(v) ? `${v.toFixed(2)}x` : 'n/a');
const fmtUs = (v, digits = 0) => (num(v) ? `${v.toFixed(digits)} us` : 'n/a');
const fmtMs = (v, d = 3) => (num(v) ? `${v.toFixed(d)} ms` : 'n/a');
const fmtNs = (v) => (num(v) ? `${v.toFixed(1)} ns` : 'n/a');
const fmtB = (v) => (num(v) ? `${v.toFixed(2)} B` : 'n/a');
const metCell = (met) => (met === null ? 'not measured' : met ? '**met**' : '**missed**');

/** The project's targets, each with the value measured and whether it is met (null: no value). */
export function evaluateTargets(s) {
  const ge = (v, t) => (num(v) ? v >= t : null);
  const le = (v, t) => (num(v) ? v <= t : null);
  return [
    {
      name: 'core allocate + release pairs/s',
      target: '>= 20 M/s',
      value: fmtRate(s.core_alloc_release_per_sec),
      met: ge(s.core_alloc_release_per_sec, 20e6),
    },
    {
      name: 'bytes per idle pool',
      target: '<= 128 B',
      value: fmtB(s.pool_bytes_idle),
      met: le(s.pool_bytes_idle, 128),
    },
    {
      name: 'bytes per port in use',
      target: '<= 4 B',
      value: fmtB(s.pool_bytes_per_port),
      met: le(s.pool_bytes_per_port, 4),
    },
    {
      name: 'JS allocate + release pairs/s',
      target: '>= 3 M/s',
      value: fmtRate(s.js_alloc_release_per_sec),
      met: ge(s.js_alloc_release_per_sec, 3e6),
    },
    {
      name: 'porter.connect rate / net.connect rate',
      target: '>= 1.00x',
      value: fmtRatio(s.connect_ratio_vs_net),
      met: ge(s.connect_ratio_vs_net, 1),
    },
    {
      name: 'connect p99 at 90 % occupancy, porter / kernel',
      target: '<= 0.50x',
      value: fmtRatio(s.latency_p99_ratio_at_90pct),
      met: le(s.latency_p99_ratio_at_90pct, 0.5),
    },
    {
      name: 'capacity exact (a: N in total, b: N per destination, c: N per destination + ERR_PORTER_EXHAUSTED)',
      target: 'exact',
      value: s.capacity_exact === null ? 'n/a' : s.capacity_exact ? 'exact' : 'not exact',
      met: s.capacity_exact,
    },
  ];
}

/** One table cell: a single line, no column separator. */
const cell = (v) =>
  String(v)
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|');

function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function missing(section) {
  if (!section) return 'not run';
  return section.missing ?? section.skipped ?? section.error ?? null;
}

/** The TCP counters seen during each method's turns, as a table. */
function countersTable(counters) {
  const names = Object.keys(counters ?? {});
  if (names.length === 0 || names.every((k) => counters[k] === null)) return 'TCP counters: nstat not available.';
  const keys = Object.keys(counters[names.find((k) => counters[k])]);
  return table(
    ['TCP counters during its turns', ...keys],
    names.map((k) => [k, ...keys.map((key) => counters[k]?.[key] ?? 'n/a')]),
  );
}

export function markdown(r, chartFile) {
  const m = r.machine;
  const out = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    `Written by \`npm run bench\` (bench/run.mjs) on ${r.date}; the raw figures are in \`bench/results/${r.date}.json\`. ` +
      'Do not edit by hand: run the benchmarks again. Benchmarks are measurements, not tests: nothing here asserts a ' +
      'timing. The machine is small and shared, so methods are interleaved (a different order each round) and ' +
      'medians and ratios against a baseline measured in the same run are what to read, more than absolute figures.',
  );
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    table(
      ['what', 'value'],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB`],
        ['kernel', `${m.kernel} (${m.arch})`],
        ['Node', m.node],
        ['rustc', m.rustc ?? 'n/a'],
        ['net.core.somaxconn', m.somaxconn ?? 'n/a'],
        ['host ip_local_port_range', m.ipLocalPortRange ?? 'n/a'],
        ['open files limit', m.openFilesLimit ?? 'n/a'],
        ['total time of the run', `${r.durationSec.toFixed(0)} s`],
      ],
    ),
  );
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(
    table(
      ['figure', 'target', 'measured', ''],
      r.targets.map((t) => [t.name, t.target, t.value, metCell(t.met)]),
    ),
  );
  out.push('');

  // Core
  out.push('## The Rust core');
  out.push('');
  const mem = r.core?.memory;
  if (missing(mem)) {
    out.push(`Memory bench: ${missing(mem)}.`);
  } else {
    out.push(
      "From `cargo bench -p porter-core --bench memory` (heap bytes counted by a global allocator; malloc's own " +
        'per-chunk overhead comes on top):',
    );
    out.push('');
    const rows = [
      ['allocate + release pairs/s, one thread', fmtRate(mem.core_alloc_release_per_sec)],
      ['bytes per idle pool (a destination with no port in use)', fmtB(mem.pool_bytes_idle)],
      ['bytes per port in use', fmtB(mem.pool_bytes_per_port)],
    ];
    if (num(mem.pool_bytes_per_aging_port)) rows.push(['bytes per aging port', fmtB(mem.pool_bytes_per_aging_port)]);
    if (mem.pool_bytes_per_port_by_count) {
      rows.push([
        'bytes per port in use, by ports in use',
        Object.entries(mem.pool_bytes_per_port_by_count)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', '),
      ]);
    }
    out.push(table(['figure', 'value'], rows));
    out.push('');
    out.push(
      'For comparison, the Erlang library this project follows builds a 64,512-entry table for every new ' +
        'destination (about 4.6 MB each).',
    );
  }
  out.push('');
  const cr = r.core?.criterion;
  if (missing(cr)) {
    out.push(`Criterion: ${missing(cr)}.`);
  } else {
    out.push('From criterion (`cargo bench -p porter-core --bench core`), medians:');
    out.push('');
    out.push(
      table(
        ['figure', 'value'],
        [
          ['pairs/s, one thread, one destination', fmtRate(cr.pairs_single_thread_per_sec)],
          ['pairs/s, two threads on two destinations (total)', fmtRate(cr.pairs_two_threads_two_destinations_per_sec)],
          [
            'pairs/s, two threads on the same destination (total)',
            fmtRate(cr.pairs_two_threads_same_destination_per_sec),
          ],
          [
            'two threads, same / two destinations',
            fmtRatio(
              num(cr.pairs_two_threads_same_destination_per_sec) && num(cr.pairs_two_threads_two_destinations_per_sec)
                ? cr.pairs_two_threads_same_destination_per_sec / cr.pairs_two_threads_two_destinations_per_sec
                : null,
            ),
          ],
          ['first allocation for a new destination', fmtNs(cr.new_destination_first_allocate_ns)],
          ['expiry, per aged port (largest queue)', fmtNs(cr.expiry_ns_per_port)],
        ],
      ),
    );
    out.push('');
    if (cr.complaints?.length) {
      out.push('Criterion wrote no estimate for some benchmarks in this run (their figures show n/a):');
      out.push('');
      for (const c of cr.complaints) out.push(`- ${c}`);
      out.push('');
    }
    out.push('<details><summary>Every criterion benchmark</summary>');
    out.push('');
    out.push(
      table(
        ['benchmark', 'median per iteration', 'per element', 'elements/s'],
        cr.benches.map((b) => [`\`${b.id}\``, fmtNs(b.median_ns), fmtNs(b.ns_per_element), fmtRate(b.per_sec)]),
      ),
    );
    out.push('');
    out.push('</details>');
  }
  out.push('');

  // JS
  out.push('## From JavaScript');
  out.push('');
  const js = r.js;
  if (missing(js)) out.push(`Not measured: ${missing(js)}.`);
  else {
    out.push(
      `tinybench, ${js.rounds} interleaved rounds, each task call a batch of ${js.batch} operations; medians. The ` +
        'baseline is a bare N-API call that does nothing (`noop` of @porter/native), made twice per operation: as ' +
        'many calls into the addon as one allocate + release.',
    );
    out.push('');
    out.push(
      table(
        ['operation', 'per second', 'cost vs. two bare calls'],
        [
          [
            '`porter.allocate({ address, port }).release({ aging: false })`',
            fmtRate(js.js_alloc_release_per_sec),
            fmtRatio(js.js_pair_cost_vs_noop_pair),
          ],
          [
            '`routeRelease(route, routeAllocate(route), false)` (the raw native pair)',
            fmtRate(js.native_alloc_release_per_sec),
            fmtRatio(js.native_pair_cost_vs_noop_pair),
          ],
          ['`noop(); noop()` (baseline)', fmtRate(js.js_noop_pair_per_sec), '1.00x'],
        ],
      ),
    );
    out.push('');
    out.push(
      `The TypeScript layer over the raw native pair costs ${fmtRatio(js.js_pair_cost_vs_native_pair)} the time of the raw pair.`,
    );
  }
  out.push('');

  // Connect rate
  out.push('## Connect rate');
  out.push('');
  const c = r.connect;
  if (missing(c)) out.push(`Not measured: ${missing(c)}.`);
  else {
    const t = c.tcp;
    out.push(
      `Connections per second until 'connect', ${t.connections} connections per method and round, ${t.concurrency} at ` +
        `a time, ${t.rounds} interleaved rounds, in a ${c.where}. The server is a child process (listen backlog ` +
        `${c.backlog}; somaxconn ${c.somaxconn} there, ${c.hostSomaxconn} on the host) that closes every ` +
        'connection as soon as it accepts it, so the client side never holds TIME_WAIT. The ratio is the median ' +
        'of the per-round ratios.',
    );
    out.push('');
    out.push(
      table(
        ['method', 'median rate', 'rounds', 'errors'],
        [
          ['`porter.connect` (portRange 10000-19999)', 'porter'],
          ['`net.connect` (the kernel picks the port)', 'net'],
          ['`net.connect` with `localAddress` and a `localPort` from a counter in JS (20000-29999)', 'net_js_port'],
        ].map(([label, k]) => [
          label,
          fmtRate(t.medians[k]),
          t.rates[k].map((x) => x.toFixed(0)).join(', '),
          Object.entries(t.errors[k])
            .map(([code, n]) => `${code} ${n}`)
            .join(', ') || 'none',
        ]),
      ),
    );
    out.push('');
    out.push(
      `porter / net.connect: **${fmtRatio(t.ratio_porter_vs_net)}**; porter / JS counter: ` +
        `${fmtRatio(t.ratio_porter_vs_net_js_port)}; JS counter / net.connect: ${fmtRatio(t.ratio_net_js_port_vs_net)}. ` +
        `porter retries: ${JSON.stringify(t.porterStats.retries)}, kernel fallbacks: ${t.porterStats.kernelFallbacks}.`,
    );
    out.push('');
    out.push(countersTable(t.counters));
    out.push('');
    out.push(
      'About the JS counter: `net.connect` cannot set socket options before its bind, but libuv sets SO_REUSEADDR ' +
        'on every TCP socket it binds, so a port chosen in JavaScript can be shared between destinations. What it ' +
        'cannot do is know which ports are free for a destination: a port still held towards the same destination ' +
        'fails at connect() with EADDRNOTAVAIL, one held by a listener or by a socket without SO_REUSEADDR fails ' +
        'at bind() with EADDRINUSE, and the counter has no pool to skip them.',
    );
    out.push('');
    const tl = c.tls;
    if (missing(tl)) out.push(`TLS: ${missing(tl)}.`);
    else {
      out.push(
        `TLS (certificate generated for the run with openssl, ECDSA P-256), ${tl.connections} connections per method ` +
          `and round, ${tl.concurrency} at a time, ${tl.rounds} rounds, until 'secureConnect':`,
      );
      out.push('');
      out.push(
        table(
          ['method', 'median rate', 'rounds', 'errors'],
          [
            ['`connect` of @porter/tls', 'porter_tls'],
            ['`tls.connect`', 'tls'],
          ].map(([label, k]) => [
            label,
            fmtRate(tl.medians[k]),
            tl.rates[k].map((x) => x.toFixed(0)).join(', '),
            Object.entries(tl.errors[k])
              .map(([code, n]) => `${code} ${n}`)
              .join(', ') || 'none',
          ]),
        ),
      );
      out.push('');
      out.push(`@porter/tls / tls.connect: **${fmtRatio(tl.ratio_porter_vs_tls)}**.`);
      out.push('');
      out.push(countersTable(tl.counters));
    }
  }
  out.push('');

  // Capacity
  out.push('## Capacity');
  out.push('');
  const cap = r.capacity;
  if (missing(cap)) out.push(`Not measured: ${missing(cap)}.`);
  else {
    const n = cap.ports;
    out.push(
      `Each case in a private network namespace of its own whose ip_local_port_range is ${cap.range[0]}-${cap.range[1]} ` +
        `(N = ${n} ports), against two destinations (two listening ports of one server process, outside the range). ` +
        'Connections are opened 32 at a time and kept open until the first failures.',
    );
    out.push('');
    const cs = cap.cases;
    const errs = (x) =>
      x && !missing(x)
        ? Object.entries(x.errors ?? {})
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'none'
        : missing(x);
    const late = (x) =>
      x?.lateErrors
        ? Object.entries(x.lateErrors)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'none'
        : 'n/a';
    const per = (x) => (Array.isArray(x?.okByTarget) ? x.okByTarget.join(' + ') : 'n/a');
    out.push(
      table(
        ['case', 'expected', 'connected', 'exact', 'then', 'errors after connecting'],
        [
          [
            'a. kernel, bind(127.0.0.1, 0) then connect (`net.connect` with `localAddress`)',
            `${n} in total`,
            `${cs.bind_then_connect?.total ?? 'n/a'} (${per(cs.bind_then_connect)})`,
            cap.summary.bind_then_connect_exact ? 'yes' : 'no',
            errs(cs.bind_then_connect),
            late(cs.bind_then_connect),
          ],
          [
            'b. kernel, plain connect() (`net.connect`)',
            `${n} per destination`,
            per(cs.plain_connect),
            cap.summary.plain_connect_exact ? 'yes' : 'no',
            errs(cs.plain_connect),
            late(cs.plain_connect),
          ],
          [
            'c. porter, portRange = the range, kernelFallback false, both destinations at once',
            `${n} per destination, then ERR_PORTER_EXHAUSTED`,
            per(cs.porter),
            cap.summary.porter_exact ? 'yes' : 'no',
            Array.isArray(cs.porter?.exhaustedCodes) ? cs.porter.exhaustedCodes.join(', ') : errs(cs.porter),
            late(cs.porter),
          ],
        ],
      ),
    );
    out.push('');
    out.push(
      'bind(ip, 0) gives one range in total, whatever the destination: the kernel picks the port before it knows ' +
        'the destination. Plain connect() gives a range per destination but no choice of source address; porter ' +
        'gives a range per destination with bind-before-connect (so a source address can be chosen too).',
    );
  }
  out.push('');

  // Latency
  out.push('## Connect latency at occupancy');
  out.push('');
  const lat = r.latency;
  if (missing(lat)) out.push(`Not measured: ${missing(lat)}.`);
  else {
    out.push(
      `In a private network namespace whose range holds N = ${lat.ports} ports, with 0 %, 50 %, 90 % and 99 % of ` +
        'them in use to one destination (held by the method being measured), the latency of one more connect, ' +
        `one at a time, ${lat.samplesPerMethod} samples per method and level, in ${lat.rounds ?? 2} rounds that go up ` +
        'the levels and back down, the methods taking turns to go first. Each ' +
        'sample is closed with a reset, so no TIME_WAIT stays behind.',
    );
    out.push('');
    out.push(`![connect latency p50 and p99 against occupancy](${chartFile})`);
    out.push('');
    out.push(
      table(
        ['in use', 'porter p50', 'porter p99', 'kernel p50', 'kernel p99', 'p99 porter / kernel'],
        lat.levels.map((l) => [
          `${Math.round(l.occupancy * 100)} % (${l.held})`,
          fmtUs(l.porter.p50Us),
          fmtUs(l.porter.p99Us),
          fmtUs(l.kernel.p50Us),
          fmtUs(l.kernel.p99Us),
          fmtRatio(l.porter.p99Us / l.kernel.p99Us),
        ]),
      ),
    );
    out.push('');
    out.push(
      `latency_p99_ratio_at_90pct = porter p99 / kernel p99 at 90 % = **${fmtRatio(lat.latency_p99_ratio_at_90pct)}** ` +
        `(p50: ${fmtRatio(lat.latency_p50_ratio_at_90pct)}). A p99 of ${lat.samplesPerMethod} samples on a shared ` +
        'machine is a noisy figure; the p50 column is the steadier one.',
    );
    const span = (k) => {
      const v = lat.levels.map((l) => l[k].p50Us);
      return `${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)} us`;
    };
    const first = lat.levels[0];
    const last = lat.levels.at(-1);
    out.push('');
    out.push(
      `Across the levels, porter's p50 spans ${span('porter')} (${fmtUs(first.porter.p50Us)} empty, ` +
        `${fmtUs(last.porter.p50Us)} at ${Math.round(last.occupancy * 100)} %); the kernel's spans ${span('kernel')} ` +
        `(${fmtUs(first.kernel.p50Us)} empty, ${fmtUs(last.kernel.p50Us)} at ${Math.round(last.occupancy * 100)} %): ` +
        'the kernel searches the range for a port free towards the destination, porter takes the next one of its ' +
        "pool. The difference on an empty range is porter's fixed cost per connect.",
    );
  }
  out.push('');

  // Aging
  out.push('## Aging precision');
  out.push('');
  const a = r.aging;
  if (missing(a)) out.push(`Not measured: ${missing(a)}.`);
  else {
    out.push(
      `A Porter with a one-port range and agingMs ${a.agingMs}: the lease is released into aging, then, from 10 ms ` +
        `before the deadline, \`allocate()\` is polled in a tight loop until the port comes back; ${a.samples} ` +
        'samples. How long after ' +
        `its deadline the port was handed out again: p50 ${fmtMs(a.late_p50_ms)}, p99 ${fmtMs(a.late_p99_ms)}, ` +
        `max ${fmtMs(a.late_max_ms)}; handed out before the deadline: ${a.early} times. The core's own part: the ` +
        'last poll refused (ERR_PORTER_EXHAUSTED) had been asked at most ' +
        `${fmtUs(a.refused_after_deadline_max_ms * 1000, 1)} after the deadline (p99 ${fmtUs(a.refused_after_deadline_p99_ms * 1000, 1)}), ` +
        'so the rest of the tail is the polling process not running (a shared machine, garbage collection), not ' +
        'the core holding the port. (The Erlang library frees aging ports in one batch every 30 s: from 0 to 30 s ' +
        'late.)',
    );
  }
  out.push('');

  // Metrics
  out.push('## Metrics overhead');
  out.push('');
  const mo = r.metrics;
  if (missing(mo)) out.push(`Not measured: ${missing(mo)}.`);
  else {
    out.push('From bench/metrics-overhead.mjs:');
    out.push('');
    out.push(
      table(
        ['figure', 'value'],
        Object.entries(mo).map(([k, v]) => [
          k,
          typeof v === 'number' ? String(Number(v.toPrecision(4))) : JSON.stringify(v),
        ]),
      ),
    );
  }
  out.push('');
  out.push('## Running them');
  out.push('');
  out.push(
    '`npm run bench` runs everything (a few minutes), writes `bench/results/<date>.json` and this page with its ' +
      'chart. `npm run bench:quick` runs a smaller set in under a minute (after the build) and prints one JSON ' +
      'object as its last line. The capacity, latency and connect-rate benchmarks need root for `unshare -n` (a ' +
      "private network namespace; the host's kernel settings are never changed); without it they report why they " +
      'were skipped, and the connect rate falls back to the host loopback. Each part also runs alone: ' +
      '`node bench/js-boundary.mjs`, `node bench/connect-rate.mjs`, `node bench/capacity.mjs`, ' +
      '`node bench/latency.mjs`, `node bench/aging.mjs`, `node bench/core.mjs`.',
  );
  out.push('');
  return out.join('\n');
}
