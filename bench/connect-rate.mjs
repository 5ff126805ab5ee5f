/**
 * Connect rate on loopback: connections per second reaching 'connect' with a fixed
 * concurrency, porter.connect with default options (mode 'hybrid': ports below the
 * kernel's ephemeral range bound by porter), in mode 'pool' and in mode 'kernel' (the
 * kernel picks every port), beside Node's net.connect (the kernel picks the port) and
 * beside net.connect with a local port chosen by a counter in JavaScript; then TLS,
 * @porter/tls beside tls.connect (when @porter/tls is built). The server is a child
 * process with a listen backlog of 4096 that closes every connection first, so the
 * client side never holds TIME_WAIT. After one unmeasured warm-up round of each method,
 * methods are interleaved, in a different order each round; the ratio is the median of
 * the per-round ratios.
 *
 * It runs in a private network namespace when it can (its own loopback, port ranges and
 * TCP counters, nothing left behind on the host), else on the host's loopback.
 * Run directly: node bench/connect-rate.mjs [--quick].
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeCerts } from '../test/helpers/certs.mjs';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { startServers } from '../test/helpers/servers.mjs';
import { drive, netConnect, quiet, tlsConnect } from './lib/connectors.mjs';
import { countersTable, errorsCell, fmtRate, fmtRatio, missing, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { log, mainThreadCpuMicros, median, nstatDelta, readNstat, readSysctl, rotate } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const tlsDist = fileURLToPath(new URL('../packages/tls/dist/esm/index.js', import.meta.url));
/** Local port ranges: porter's in mode 'pool', and the JavaScript counter's (both below
 * the kernel's ephemeral range). */
const POOL_RANGE = [10000, 19999];
const COUNTER_RANGE = [20000, 29999];

export async function runConnectRate({ quick = false } = {}) {
  const config = quick
    ? { tcp: { rounds: 3, connections: 1500, concurrency: 64 }, tls: { rounds: 3, connections: 200, concurrency: 16 } }
    : {
        tcp: { rounds: 9, connections: 5000, concurrency: 64 },
        tls: { rounds: 15, connections: 400, concurrency: 16 },
      };
  const why = netnsUnavailableReason();
  let out;
  if (why === undefined) {
    out = await runInNamespace(self, config, { timeoutMs: 400_000 });
    out.where = 'private network namespace (loopback)';
  } else {
    out = await measure(config);
    out.where = `host loopback (${why})`;
  }
  out.hostSomaxconn = readSysctl('net/core/somaxconn');
  return out;
}

/** Waits until every socket has closed (the server closes them). */
function allClosed(sockets, timeoutMs = 10_000) {
  return Promise.race([
    Promise.all(sockets.map((s) => (s.closed || s.destroyed ? null : new Promise((r) => s.once('close', r))))),
    new Promise((r) => setTimeout(r, timeoutMs).unref()),
  ]);
}

/** Interleaved rounds of `methods` (name -> connect(target)); rates in connections/s. */
async function rounds(methods, target, { rounds, connections, concurrency }, label) {
  const names = Object.keys(methods);
  const rates = Object.fromEntries(names.map((k) => [k, []]));
  const errors = Object.fromEntries(names.map((k) => [k, {}]));
  // The TCP counters, summed over each method's own turns (null without nstat).
  const counters = Object.fromEntries(names.map((k) => [k, null]));
  // CPU time of the event-loop thread per connection: what a method costs the client,
  // less disturbed than its rate by other load on the machine.
  const cpu = Object.fromEntries(names.map((k) => [k, []]));
  // One unmeasured round of each first: JIT warm-up, the first pools, the socket reserve.
  for (const name of names) {
    const r = await drive(methods[name], [target], { concurrency, total: connections, maxAttempts: connections * 2 });
    await allClosed(r.sockets);
  }
  for (let round = 0; round < rounds; round++) {
    for (const name of rotate(names, round)) {
      const before = readNstat();
      const cpuBefore = mainThreadCpuMicros();
      const r = await drive(methods[name], [target], { concurrency, total: connections, maxAttempts: connections * 2 });
      rates[name].push((r.ok / r.elapsedMs) * 1000);
      if (cpuBefore !== null) cpu[name].push((mainThreadCpuMicros() - cpuBefore) / Math.max(1, r.ok));
      for (const [code, n] of Object.entries(r.errors)) errors[name][code] = (errors[name][code] ?? 0) + n;
      await allClosed(r.sockets);
      r.sockets.length = 0;
      const delta = nstatDelta(before, readNstat());
      if (delta) {
        counters[name] ??= {};
        for (const [k, v] of Object.entries(delta)) counters[name][k] = (counters[name][k] ?? 0) + v;
      }
    }
    log(`  ${label} round ${round + 1}: ${names.map((k) => `${k} ${rates[k].at(-1).toFixed(0)}/s`).join(', ')}`);
  }
  return {
    rates,
    errors,
    counters,
    cpuMicrosPerConnection: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v.length ? median(v) : null])),
    medians: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)])),
  };
}

function perRoundRatio(a, b) {
  return median(a.map((x, i) => x / b[i]));
}

async function measure(config) {
  const { Porter } = await import('@porter/core');
  const out = { somaxconn: readSysctl('net/core/somaxconn'), backlog: 4096 };

  // TCP
  const server = await startServers({ mode: 'close-first', backlog: 4096 });
  const target = { host: '127.0.0.1', port: server.ports[0] };
  // Default options: what a user gets without configuring anything.
  const porter = new Porter();
  const pool = new Porter({ mode: 'pool', portRange: POOL_RANGE });
  const kernel = new Porter({ mode: 'kernel' });
  let next = COUNTER_RANGE[0];
  const counterPort = () => {
    const p = next;
    next = next === COUNTER_RANGE[1] ? COUNTER_RANGE[0] : next + 1;
    return p;
  };
  const methods = {
    porter: quiet((t) => porter.connect(t)),
    porter_pool: quiet((t) => pool.connect(t)),
    porter_kernel: quiet((t) => kernel.connect(t)),
    net: (t) => netConnect(t),
    net_js_port: (t) => netConnect({ ...t, localAddress: '127.0.0.1', localPort: counterPort() }),
  };
  const tcp = await rounds(methods, target, config.tcp, 'tcp');
  await server.stop();
  const ps = porter.stats();
  out.tcp = {
    ...config.tcp,
    ...tcp,
    ratio_porter_vs_net: perRoundRatio(tcp.rates.porter, tcp.rates.net),
    ratio_pool_vs_net: perRoundRatio(tcp.rates.porter_pool, tcp.rates.net),
    ratio_kernel_vs_net: perRoundRatio(tcp.rates.porter_kernel, tcp.rates.net),
    ratio_porter_vs_net_js_port: perRoundRatio(tcp.rates.porter, tcp.rates.net_js_port),
    ratio_net_js_port_vs_net: perRoundRatio(tcp.rates.net_js_port, tcp.rates.net),
    porterStats: {
      options: porter.options,
      retries: ps.retries,
      kernelPicks: ps.kernelPicks,
      kernelFallbacks: ps.kernelFallbacks,
      connectErrors: ps.connectErrors,
    },
  };

  // TLS
  if (!existsSync(tlsDist)) {
    out.tls = { missing: '@porter/tls is not built (packages/tls/dist)' };
    return out;
  }
  let certs;
  try {
    certs = makeCerts();
    const tlsServer = await startServers({
      mode: 'close-first',
      backlog: 4096,
      tls: { key: certs.server.keyFile, cert: certs.server.certFile },
    });
    const tlsTarget = { host: '127.0.0.1', port: tlsServer.ports[0] };
    const porterTls = await import('@porter/tls');
    const tlsPorter = new Porter();
    const common = { ca: certs.ca, servername: 'localhost' };
    const tlsMethods = {
      porter_tls: quiet((t) => porterTls.connect({ ...t, ...common, porter: tlsPorter })),
      tls: (t) => tlsConnect({ ...t, ...common }),
    };
    const tlsRounds = await rounds(tlsMethods, tlsTarget, config.tls, 'tls');
    await tlsServer.stop();
    out.tls = {
      ...config.tls,
      ...tlsRounds,
      ratio_porter_vs_tls: perRoundRatio(tlsRounds.rates.porter_tls, tlsRounds.rates.tls),
      // Main-thread CPU per connection, tls.connect's over porter's: above 1 when porter costs less.
      cpu_ratio_tls_vs_porter:
        tlsRounds.cpuMicrosPerConnection.porter_tls && tlsRounds.cpuMicrosPerConnection.tls
          ? tlsRounds.cpuMicrosPerConnection.tls / tlsRounds.cpuMicrosPerConnection.porter_tls
          : null,
    };
  } catch (err) {
    out.tls = { error: String(err?.message ?? err) };
  } finally {
    certs?.cleanup();
  }
  return out;
}

async function child(config) {
  setupNamespace(config.hostNetns, null);
  return measure(config);
}

/** Rows of a rates table: label, median, every round, errors. */
function rateRows(t, labels) {
  return labels.map(([label, k]) => [
    label,
    fmtRate(t.medians[k]),
    t.rates[k].map((x) => x.toFixed(0)).join(', '),
    errorsCell(t.errors[k]),
  ]);
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function connectReport(c) {
  const out = [];
  const t = c.tcp;
  out.push(
    `Connections per second until 'connect', ${t.connections} connections per method and round, ${t.concurrency} at ` +
      `a time, ${t.rounds} interleaved rounds, in a ${c.where}. The server is a child process (listen backlog ` +
      `${c.backlog}; somaxconn ${c.somaxconn} there, ${c.hostSomaxconn} on the host) that closes every ` +
      'connection as soon as it accepts it, so the client side never holds TIME_WAIT. The ratio is the median ' +
      "of the per-round ratios. The namespace keeps the kernel's default ephemeral range (32768-60999).",
  );
  out.push('');
  out.push(
    table(
      ['method', 'median rate', 'rounds', 'errors'],
      rateRows(t, [
        ["`porter.connect`, default options (mode 'hybrid', range 1024-65535)", 'porter'],
        ["`porter.connect`, mode 'pool' (portRange 10000-19999)", 'porter_pool'],
        ["`porter.connect`, mode 'kernel' (the kernel picks every port)", 'porter_kernel'],
        ['`net.connect` (the kernel picks the port)', 'net'],
        ['`net.connect` with `localAddress` and a `localPort` from a counter in JS (20000-29999)', 'net_js_port'],
      ]),
    ),
  );
  out.push('');
  out.push(
    `porter (default) / net.connect: **${fmtRatio(t.ratio_porter_vs_net)}**; mode 'pool' / net.connect: ` +
      `${fmtRatio(t.ratio_pool_vs_net)}; mode 'kernel' / net.connect: ${fmtRatio(t.ratio_kernel_vs_net)}; ` +
      `porter / JS counter: ${fmtRatio(t.ratio_porter_vs_net_js_port)}; JS counter / net.connect: ` +
      `${fmtRatio(t.ratio_net_js_port_vs_net)}. Default porter's retries: ${JSON.stringify(t.porterStats.retries)}, ` +
      `kernel picks: ${t.porterStats.kernelPicks ?? 'n/a'}, kernel fallbacks: ${t.porterStats.kernelFallbacks}.`,
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
  if (missing(tl)) {
    out.push(`TLS: ${missing(tl)}.`);
    return out;
  }
  out.push(
    `TLS (certificate generated for the run with openssl, ECDSA P-256), ${tl.connections} connections per method ` +
      `and round, ${tl.concurrency} at a time, ${tl.rounds} rounds, until 'secureConnect':`,
  );
  out.push('');
  out.push(
    table(
      ['method', 'median rate', 'rounds', 'errors'],
      rateRows(tl, [
        ['`connect` of @porter/tls', 'porter_tls'],
        ['`tls.connect`', 'tls'],
      ]),
    ),
  );
  out.push('');
  out.push(`@porter/tls / tls.connect: **${fmtRatio(tl.ratio_porter_vs_tls)}**.`);
  const cpuPer = tl.cpuMicrosPerConnection ?? {};
  if (cpuPer.porter_tls && cpuPer.tls) {
    out.push('');
    out.push(
      `Event-loop CPU per connection (median of the rounds): @porter/tls ${cpuPer.porter_tls.toFixed(0)} µs, ` +
        `tls.connect ${cpuPer.tls.toFixed(0)} µs; tls.connect's / porter's: ${fmtRatio(tl.cpu_ratio_tls_vs_porter)}. ` +
        'On a shared machine the CPU time a method spends is steadier than its rate.',
    );
  }
  out.push('');
  out.push(countersTable(tl.counters));
  out.push('');
  out.push(
    'TcpRetransSegs here are tail loss probes that the receiver reports as duplicates (TCPLossProbes, TCPDSACKRecv): ' +
      'spurious, sent when the peer delayed its ACK because its event loop was late to answer. They follow the load ' +
      'on the two processes, not the sockets either method makes.',
  );
  return out;
}

if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runConnectRate({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
