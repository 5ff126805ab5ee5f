/**
 * A server in the same process: an awaited loop of connects (`await connect()`, the
 * socket destroyed, the next one), as proxies and test harnesses run them, to a server
 * of this very process at listen backlogs 511 and 64. Beside `net.connect` and
 * `porter.connect`, the ceiling: what the kernel allows, a Rust client doing `socket`,
 * `connect` and `close` in a loop against the same server
 * (crates/porter-core/examples/connect_loop.rs, built here). Reported per method: the
 * time of the loop (median of the rounds), its slowest connect, how far the server's
 * accepts fell behind, and the kernel's counters (ListenDrops: SYNs dropped on a full
 * accept queue; TCPSynRetrans: a connect that waited a second for the retransmission).
 * Methods are interleaved, in a different order each round; the ratio is the median of
 * the per-round ratios. The loop and its server are the fairness test's
 * (test/helpers/in-process.mjs).
 *
 * It runs in a private network namespace when it can (its own counters), else on the
 * host's loopback. Run directly: node bench/in-process.mjs [--quick].
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awaitedLoop, inProcessServer, netConnectTo } from '../test/helpers/in-process.mjs';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { run } from '../test/helpers/run.mjs';
import { targetDir } from './core.mjs';
import { fmtMs, fmtRate, fmtRatio, missing, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { lastJsonLine, log, median, nstatDelta, readNstat, rotate, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const BACKLOGS = [511, 64];

/** Builds the Rust client; its path, or { error }. */
async function buildClient() {
  const res = await run('cargo', ['build', '--release', '-q', '-p', 'porter-core', '--example', 'connect_loop'], {
    cwd: root,
    timeoutMs: 900_000,
  });
  if (res.code !== 0) return { error: `cargo build --example connect_loop failed: ${tail(res.stderr, 3)}` };
  return { path: join(await targetDir(), 'release', 'examples', 'connect_loop') };
}

export async function runInProcess({ quick = false } = {}) {
  const config = quick ? { rounds: 2, connections: 1000 } : { rounds: 5, connections: 2000 };
  const client = await buildClient();
  const measured = { ...config, client: client.path ?? null, clientError: client.error ?? null };
  const why = netnsUnavailableReason();
  let out;
  if (why === undefined) {
    out = await runInNamespace(self, measured, { timeoutMs: 600_000 });
    out.where = 'private network namespace (loopback)';
  } else {
    out = await measure(measured);
    out.where = `host loopback (${why}; the counters are the host's)`;
  }
  return out;
}

/** The Rust client's loop against `port`: the loop's result, or { error }. */
async function kernelLoop(clientPath, port, connections) {
  const res = await run(clientPath, [`127.0.0.1:${port}`, String(connections)], { timeoutMs: 300_000 });
  const out = lastJsonLine(res.stdout);
  if (res.code !== 0 || !out) return { error: `exit ${res.code}: ${tail(res.stderr || res.stdout, 2)}` };
  return out;
}

/** One method's loop against a new server: the loop's result and the counters' deltas. */
async function oneLoop(method, backlog, connections) {
  const server = await inProcessServer(backlog);
  const before = readNstat();
  let loop;
  try {
    loop = await method(server, connections);
  } finally {
    await server.close();
  }
  return { ...loop, counters: nstatDelta(before, readNstat()) };
}

async function measure(config) {
  const { Porter } = await import('@porter/core');
  const porter = new Porter();
  const methods = {
    net: (server, n) => awaitedLoop(netConnectTo, server, n),
    porter: (server, n) => awaitedLoop((port) => porter.connect({ host: '127.0.0.1', port }), server, n),
  };
  if (config.client) {
    methods.kernel = async (server, n) => ({
      ...(await kernelLoop(config.client, server.port, n)),
      mostBehind: null,
      accepted: server.accepted(),
    });
  }
  const names = Object.keys(methods);
  const backlogs = {};
  for (const backlog of BACKLOGS) {
    const runs = Object.fromEntries(names.map((k) => [k, []]));
    // One unmeasured loop of each first: JIT warm-up, the first pools, the socket reserve.
    for (const name of names) await oneLoop(methods[name], backlog, Math.min(200, config.connections));
    for (let round = 0; round < config.rounds; round++) {
      for (const name of rotate(names, round))
        runs[name].push(await oneLoop(methods[name], backlog, config.connections));
      log(
        `  in-process backlog ${backlog} round ${round + 1}: ` +
          names.map((k) => `${k} ${runs[k].at(-1).elapsedMs?.toFixed(0) ?? 'failed'} ms`).join(', '),
      );
    }
    backlogs[backlog] = summarize(runs);
  }
  return { ...config, backlogs, clientError: config.clientError };
}

/** Per method: median time and rate, slowest connect, most behind, summed counters. */
function summarize(runs) {
  const by = {};
  for (const [name, list] of Object.entries(runs)) {
    const ok = list.filter((r) => typeof r.elapsedMs === 'number');
    const counters = {};
    for (const r of ok) for (const [k, v] of Object.entries(r.counters ?? {})) counters[k] = (counters[k] ?? 0) + v;
    by[name] = {
      elapsedMs: ok.map((r) => r.elapsedMs),
      medianMs: ok.length ? median(ok.map((r) => r.elapsedMs)) : null,
      rate: ok.length ? median(ok.map((r) => (r.connects / r.elapsedMs) * 1000)) : null,
      slowestMs: ok.length ? Math.max(...ok.map((r) => r.slowestMs)) : null,
      mostBehind: ok.some((r) => typeof r.mostBehind === 'number')
        ? Math.max(...ok.map((r) => r.mostBehind ?? 0))
        : null,
      failed: ok.reduce((n, r) => n + (r.failed ?? 0), 0),
      errors: list.filter((r) => r.error).map((r) => r.error),
      // oneLoop's deltas are null when nstat is missing.
      counters: list.some((r) => r.counters !== null) ? counters : null,
    };
  }
  const perRound = (a, b) =>
    runs[a] && runs[b] ? median(runs[a].map((r, i) => r.elapsedMs / runs[b][i].elapsedMs)) : null;
  return {
    methods: by,
    time_ratio_porter_vs_net: perRound('porter', 'net'),
    time_ratio_kernel_vs_net: perRound('kernel', 'net'),
  };
}

async function child(config) {
  setupNamespace(config.hostNetns, null);
  return measure(config);
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function inProcessReport(r) {
  const out = [];
  out.push(
    `An awaited loop of ${r.connections} connects (\`await connect()\`, the socket destroyed, the next one) to a ` +
      `server in the same process that closes what it accepts, ${r.rounds} interleaved rounds per listen backlog, ` +
      `in a ${r.where}. The ceiling is a Rust client in its own process doing \`socket\`, a blocking \`connect\` ` +
      'and `close` in a loop against the same server: what the kernel allows. Since libuv 1.45 (Node 20) a server ' +
      'accepts one connection per poll phase of its event loop, so a client in its process that does not let the ' +
      'loop turn once per connect overflows the accept queue; each dropped SYN costs that connect a second ' +
      '(ListenDrops, TCPSynRetrans). "Most behind": the connects the server had not accepted yet when one settled. ' +
      'The Rust client waits for nothing but the kernel, so at a small backlog it outruns the server: its drops ' +
      "there show the limit of a Node server's one accept per loop turn, which a client in the same process, " +
      'turning the loop once per connect, never reaches.',
  );
  if (r.clientError) out.push('', `The Rust client was not built: ${r.clientError}.`);
  for (const backlog of BACKLOGS) {
    const b = r.backlogs?.[backlog];
    if (!b) continue;
    const label = {
      net: '`net.connect`',
      porter: '`porter.connect` (default options)',
      kernel: 'Rust client (ceiling)',
    };
    const rows = Object.entries(b.methods).map(([name, m]) => [
      label[name] ?? name,
      fmtMs(m.medianMs, 0),
      fmtRate(m.rate),
      fmtMs(m.slowestMs, 1),
      m.mostBehind ?? 'n/a',
      m.counters?.TcpExtListenDrops ?? 'n/a',
      m.counters?.TcpExtTCPSynRetrans ?? 'n/a',
      m.failed + m.errors.length,
    ]);
    out.push('', `Backlog ${backlog}:`, '');
    out.push(
      table(
        [
          'method',
          'median time',
          'median rate',
          'slowest connect',
          'most behind',
          'ListenDrops',
          'SYN retransmits',
          'failed',
        ],
        rows,
      ),
    );
    out.push(
      '',
      `porter / net.connect time: **${fmtRatio(b.time_ratio_porter_vs_net)}** (target <= 1.50x); the ceiling's / ` +
        `net.connect's: ${fmtRatio(b.time_ratio_kernel_vs_net)}.`,
    );
  }
  return out;
}

/** The summary's figures: porter's time ratio per backlog, and its worst connect and drops. */
export function inProcessSummary(r) {
  if (missing(r)) return {};
  const porter = BACKLOGS.map((b) => r.backlogs?.[b]?.methods?.porter).filter(Boolean);
  const drops = porter.map((m) => m.counters?.TcpExtListenDrops);
  return {
    in_process_time_ratio_511: r.backlogs?.[511]?.time_ratio_porter_vs_net ?? null,
    in_process_time_ratio_64: r.backlogs?.[64]?.time_ratio_porter_vs_net ?? null,
    in_process_porter_slowest_ms: porter.length ? Math.max(...porter.map((m) => m.slowestMs)) : null,
    in_process_porter_listen_drops: drops.every((d) => typeof d === 'number') ? drops.reduce((a, b) => a + b, 0) : null,
  };
}

if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runInProcess({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
