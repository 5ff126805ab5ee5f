/**
 * Capacity: how many connections one range of N local ports gives, in a private network
 * namespace whose ip_local_port_range is that range, against two destinations (two
 * listening ports of one server process in the same namespace).
 *
 *   a. the kernel, bind(127.0.0.1, 0) before connect (net.connect with localAddress)
 *   b. the kernel, plain connect() (net.connect without localAddress)
 *   c. porter in mode 'pool' with portRange = the range, servicePorts 'use', kernelFallback
 *      false: porter binds every port (those /etc/services names too, which it leaves alone
 *      by default); N to each destination at the same time, then a clean ERR_PORTER_EXHAUSTED
 *   d. the same with default options but the range: the range is the ephemeral range, so
 *      the kernel picks every port (mode 'hybrid'), and porter tracks them
 *
 * Each case runs in a namespace of its own. Run directly: node bench/capacity.mjs [N].
 */
import { fileURLToPath } from 'node:url';
import { startServers } from '../test/helpers/servers.mjs';
import { drive, netConnect } from './lib/connectors.mjs';
import { missing, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { log } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
/** The range starts below the default ephemeral range, where the server's own ports are. */
const RANGE_FIRST = 20000;

export async function runCapacity({ quick = false, ports } = {}) {
  const n = ports ?? (quick ? 2000 : 4000);
  const range = [RANGE_FIRST, RANGE_FIRST + n - 1];
  const result = { ports: n, range, cases: {} };
  for (const kase of ['bind_then_connect', 'plain_connect', 'porter', 'porter_default']) {
    log(`capacity: ${kase}, ${n} ports`);
    result.cases[kase] = await runInNamespace(self, { kase, range }, { timeoutMs: 180_000 });
  }
  const a = result.cases.bind_then_connect;
  const b = result.cases.plain_connect;
  const c = result.cases.porter;
  const d = result.cases.porter_default;
  const porterExact = (x) =>
    Array.isArray(x.okByTarget) &&
    x.okByTarget.every((v) => v === n) &&
    Array.isArray(x.exhaustedCodes) &&
    x.exhaustedCodes.every((code) => code === 'ERR_PORTER_EXHAUSTED');
  result.summary = {
    bind_then_connect_total: a.total ?? null,
    bind_then_connect_expected: n,
    bind_then_connect_exact: a.total === n,
    plain_connect_per_destination: b.okByTarget ?? null,
    plain_connect_expected: n,
    plain_connect_exact: Array.isArray(b.okByTarget) && b.okByTarget.every((x) => x === n),
    porter_per_destination: c.okByTarget ?? null,
    porter_expected: n,
    porter_exhausted_code: c.exhaustedCodes ?? null,
    porter_exact: porterExact(c) && porterExact(d),
    porter_default_per_destination: d.okByTarget ?? null,
    porter_default_kernel_picks: d.kernelPicks ?? null,
  };
  return result;
}

async function child(config) {
  const { kase, range, hostNetns } = config;
  const n = range[1] - range[0] + 1;
  // Loopback up; the server takes its ports from the default range, then the range is set.
  setupNamespace(hostNetns, null);
  const server = await startServers({ count: 2, mode: 'echo', backlog: 4096 });
  setupNamespace(hostNetns, range);
  if (server.ports.some((p) => p >= range[0] && p <= range[1])) throw new Error('server port inside the range');
  const targets = server.ports.map((port) => ({ host: '127.0.0.1', port }));
  const out = { kase, n };
  // Errors on connections already made (a reset would show here): counted, not thrown.
  const lateErrors = {};
  const counted = (connect) => async (t) => {
    const socket = await connect(t);
    socket.on('error', (err) => {
      lateErrors[err.code] = (lateErrors[err.code] ?? 0) + 1;
    });
    return socket;
  };
  if (kase === 'bind_then_connect') {
    const r = await drive(
      counted((t) => netConnect({ ...t, localAddress: '127.0.0.1' })),
      targets,
      {
        concurrency: 32,
        maxAttempts: 3 * n,
        stopAfterFailures: 200,
      },
    );
    Object.assign(out, { total: r.ok, okByTarget: r.okByTarget, attempts: r.attempts, errors: r.errors });
    out.elapsedMs = r.elapsedMs;
  } else if (kase === 'plain_connect') {
    const r = await drive(counted(netConnect), targets, {
      concurrency: 32,
      maxAttempts: 3 * n,
      stopAfterFailures: 200,
    });
    Object.assign(out, { total: r.ok, okByTarget: r.okByTarget, attempts: r.attempts, errors: r.errors });
    out.elapsedMs = r.elapsedMs;
  } else {
    const { Porter } = await import('@porter/core');
    const mode = kase === 'porter' ? { mode: 'pool', servicePorts: 'use' } : {};
    const porter = new Porter({ ...mode, portRange: range, kernelFallback: false });
    const r = await drive(
      counted((t) => porter.connect(t)),
      targets,
      { concurrency: 32, total: 2 * n, maxAttempts: 2 * n },
    );
    const exhaustedCodes = [];
    for (const t of targets) {
      try {
        const s = await porter.connect(t);
        exhaustedCodes.push('connected');
        r.sockets.push(s);
      } catch (err) {
        exhaustedCodes.push(err?.code ?? String(err));
      }
    }
    const stats = porter.stats();
    Object.assign(out, {
      total: r.ok,
      okByTarget: r.okByTarget,
      attempts: r.attempts,
      errors: r.errors,
      exhaustedCodes,
      kernelFallbacks: stats.kernelFallbacks,
      kernelPicks: stats.kernelPicks,
      retries: stats.retries,
    });
    out.elapsedMs = r.elapsedMs;
  }
  const open = await server.count();
  out.serverOpen = open.open;
  out.lateErrors = { ...lateErrors }; // before the server goes (its exit resets the rest)
  await server.stop();
  return out;
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function capacityReport(cap) {
  const out = [];
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
          "c. porter, mode 'pool', portRange = the range, servicePorts 'use' (every port), kernelFallback false, both destinations at once",
          `${n} per destination, then ERR_PORTER_EXHAUSTED`,
          per(cs.porter),
          cap.summary.porter_exact ? 'yes' : 'no',
          Array.isArray(cs.porter?.exhaustedCodes) ? cs.porter.exhaustedCodes.join(', ') : errs(cs.porter),
          late(cs.porter),
        ],
        [
          "d. porter, default options (mode 'hybrid': the range is the ephemeral range, so the kernel picks every port), kernelFallback false",
          `${n} per destination, then ERR_PORTER_EXHAUSTED`,
          `${per(cs.porter_default)} (kernel picks: ${cs.porter_default?.kernelPicks ?? 'n/a'})`,
          Array.isArray(cs.porter_default?.okByTarget) && cs.porter_default.okByTarget.every((x) => x === n)
            ? 'yes'
            : 'no',
          Array.isArray(cs.porter_default?.exhaustedCodes)
            ? cs.porter_default.exhaustedCodes.join(', ')
            : errs(cs.porter_default),
          late(cs.porter_default),
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
  return out;
}

if (!runIfChild(child) && process.argv[1] === self) {
  const n = Number(process.argv[2]) || undefined;
  const r = await runCapacity({ ports: n });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
