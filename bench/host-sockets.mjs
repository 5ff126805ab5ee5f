/**
 * The host's sockets, read the ways `porter doctor` could read them, at 60,000
 * connections (120,000 sockets: both ends are in the namespace) in a private network
 * namespace: four client processes hold 15,000 plain connections each to one of four
 * listeners that never accept (their accept queues hold the connections, at no
 * descriptor's cost; ip_local_port_range 1024-65535 there).
 *
 *   sock_diag      hostSockets(zones, 'sock_diag'): netlink dump, grouped in Rust (what the doctor uses)
 *   /proc, Rust    hostSockets(zones, 'proc'): /proc/net/tcp{,6} parsed and grouped in Rust (its fallback)
 *   /proc, JS      /proc/net/tcp{,6} read and parsed in JavaScript, grouped per destination in a Map
 *   /proc, read    /proc/net/tcp{,6} read only (readFileSync): the kernel formatting the text
 *   ss -tan        `ss -tanH` spawned, its output read: what the iproute2 tool costs
 *   porter doctor  `porter doctor --json` spawned: the whole command, Node's start included
 *
 * Rounds interleave the methods (another order each round); wall time and CPU time (user +
 * system, this process's and its children's: the kernel's formatting and dumping count
 * there) per read, medians. On a shared machine, CPU time is the steadier figure.
 * Run directly: node bench/host-sockets.mjs [--quick] [--write]. Last line: JSON. With
 * --write (full runs only), also bench/results/host-sockets-<date>.json, which
 * docs/benchmarks.md shows when the full run (npm run bench) did not measure this.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startServers } from '../test/helpers/servers.mjs';
import { fmtRatio, table } from './lib/format.mjs';
import { latestResult, writeResult } from './lib/machine.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { log, median, rotate, sig } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
const bin = fileURLToPath(new URL('../packages/cli/bin/porter.js', import.meta.url));
const PROCESSES = 4;

export async function runHostSockets({ quick = false } = {}) {
  const connections = quick ? 12_000 : 60_000;
  log(`host sockets: ${connections.toLocaleString('en')} connections from ${PROCESSES} processes`);
  const loadBefore = loadavg()[0];
  const r = await runInNamespace(self, { connections, rounds: quick ? 3 : 7 }, { timeoutMs: 900_000 });
  return { ...r, loadavg: [sig(loadBefore, 3), sig(loadavg()[0], 3)] };
}

/** The latest result of a separate run (bench/results/host-sockets-<date>.json), or null. */
export const latestHostSockets = () => latestResult('host-sockets');

/** A client process: `count` connections to `port`, then "ready", held until stdin closes. */
async function client({ port, count }) {
  const sockets = [];
  let next = 0;
  async function worker() {
    while (next < count) {
      next++;
      sockets.push(
        await new Promise((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port });
          s.once('connect', () => resolve(s)).once('error', reject);
        }),
      );
    }
  }
  await Promise.all(Array.from({ length: 100 }, worker));
  process.stdout.write(`${JSON.stringify({ ready: sockets.length })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** CPU time of this process and of its children waited for, in ms: user and system (the kernel's). */
function cpuMs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime, cstime: fields 16 and 17, in clock ticks (USER_HZ, 100 on Linux).
  const own = process.cpuUsage();
  return { user: own.user / 1000 + Number(f[13]) * 10, system: own.system / 1000 + Number(f[14]) * 10 };
}

/** /proc/net/tcp{,6} parsed in JavaScript: sockets per destination (remote address:port). */
function procInJs() {
  const byDestination = new Map();
  let sockets = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = readFileSync(file, 'latin1').split('\n');
    for (let i = 1; i < lines.length; i++) {
      const fields = lines[i].trim().split(/\s+/);
      if (fields.length < 10) continue;
      const state = Number.parseInt(fields[3], 16);
      if (state === 10 || state === 7) continue; // LISTEN, CLOSE
      const [remote, remotePort] = fields[2].split(':');
      const key = `${remote}:${Number.parseInt(remotePort, 16)}`;
      const local = Number.parseInt(fields[1].split(':')[1], 16);
      let d = byDestination.get(key);
      if (d === undefined) {
        d = { sockets: 0, ports: new Set() };
        byDestination.set(key, d);
      }
      d.sockets++;
      d.ports.add(local);
      sockets++;
    }
  }
  return { sockets, destinations: byDestination.size };
}

async function child(config) {
  setupNamespace(config.hostNetns, [1024, 65535]);
  writeFileSync('/proc/sys/net/core/somaxconn', '65535\n');
  const { hostSockets } = await import('@porter/core/internal');
  const listeners = await startServers({ mode: 'no-accept', count: PROCESSES, backlog: 65535, lifetimeMs: 900_000 });
  const per = Math.ceil(config.connections / PROCESSES);
  const t0 = performance.now();
  const clients = listeners.ports.map((port) =>
    spawn(process.execPath, [self, '--client', JSON.stringify({ port, count: per })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const ready = await Promise.all(
    clients.map((c) => new Promise((resolve) => createInterface({ input: c.stdout }).once('line', resolve))),
  );
  const held = ready.reduce((n, line) => n + JSON.parse(line).ready, 0);
  log(`  ${held} connections held after ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const zones = [[[1024, 65535]], []];
  const methods = {
    sock_diag: () => {
      const h = hostSockets(zones, 'sock_diag');
      return { outgoing: h.destinations.reduce((n, d) => n + d.connections, 0), destinations: h.destinations.length };
    },
    proc_rust: () => {
      const h = hostSockets(zones, 'proc');
      return { outgoing: h.destinations.reduce((n, d) => n + d.connections, 0), destinations: h.destinations.length };
    },
    proc_js: () => {
      const r = procInJs();
      return { sockets: r.sockets, remotes: r.destinations };
    },
    proc_read: () => ({
      bytes: readFileSync('/proc/net/tcp').length + readFileSync('/proc/net/tcp6').length,
    }),
    ss: () => ({
      lines: execFileSync('ss', ['-tanH'], { maxBuffer: 256 << 20, encoding: 'latin1' }).split('\n').length - 1,
    }),
    doctor: () => {
      let stdout = '';
      try {
        stdout = execFileSync(process.execPath, [bin, 'doctor', '--json'], { maxBuffer: 256 << 20, encoding: 'utf8' });
      } catch (e) {
        stdout = e.stdout; // exit code 1: something to change
      }
      const r = JSON.parse(stdout.trim().split('\n').at(-1));
      return { outgoing: r.sockets.connections, destinations: r.destinations.length, source: r.sockets.source };
    },
  };
  const names = Object.keys(methods);
  const wall = Object.fromEntries(names.map((n) => [n, []]));
  const cpu = Object.fromEntries(names.map((n) => [n, []]));
  const kernel = Object.fromEntries(names.map((n) => [n, []]));
  const seen = {};
  for (let round = 0; round < config.rounds; round++) {
    for (const name of rotate(names, round)) {
      const c0 = cpuMs();
      const w0 = performance.now();
      seen[name] = methods[name]();
      wall[name].push(performance.now() - w0);
      const c1 = cpuMs();
      cpu[name].push(c1.user + c1.system - c0.user - c0.system);
      kernel[name].push(c1.system - c0.system);
    }
  }
  for (const c of clients) c.stdin.end();
  await Promise.all(clients.map((c) => new Promise((resolve) => c.once('exit', resolve))));
  await listeners.stop();
  const results = Object.fromEntries(
    names.map((n) => [
      n,
      { wallMs: sig(median(wall[n])), cpuMs: sig(median(cpu[n])), kernelMs: sig(median(kernel[n])), seen: seen[n] },
    ]),
  );
  return {
    connections: held,
    processes: PROCESSES,
    rounds: config.rounds,
    procBytes: seen.proc_read?.bytes ?? null,
    results,
    ratio_proc_rust_vs_sock_diag: sig(results.proc_rust.wallMs / results.sock_diag.wallMs, 3),
    ratio_proc_js_vs_sock_diag: sig(results.proc_js.wallMs / results.sock_diag.wallMs, 3),
    cpu_ratio_proc_rust_vs_sock_diag: sig(results.proc_rust.cpuMs / results.sock_diag.cpuMs, 3),
    cpu_ratio_proc_js_vs_sock_diag: sig(results.proc_js.cpuMs / results.sock_diag.cpuMs, 3),
  };
}

const LABELS = {
  sock_diag: 'sock_diag, grouped in Rust (`porter doctor`)',
  proc_rust: '/proc/net/tcp{,6} parsed and grouped in Rust (the fallback)',
  proc_js: '/proc/net/tcp{,6} parsed and grouped in JavaScript',
  proc_read: '/proc/net/tcp{,6} read only, not parsed',
  ss: '`ss -tanH` spawned, output read',
  doctor: '`porter doctor --json` spawned (Node start included)',
};

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function hostSocketsReport(r) {
  const base = r.results.sock_diag;
  return [
    `${r.connections.toLocaleString('en')} connections (${(r.connections * 2).toLocaleString('en')} sockets: both ends ` +
      `are in the namespace) from ${r.processes} client processes to ${r.processes} listeners that never accept, ` +
      'in a private network namespace; each way of reading every TCP socket of the namespace, median of ' +
      `${r.rounds} interleaved rounds. CPU: user + system time of the reading process and of the ones it ` +
      'spawned (the kernel dumping sockets or formatting /proc/net/tcp counts there); on a shared machine the ' +
      `steadier figure. The two /proc files held ${(r.procBytes / 2 ** 20).toFixed(1)} MiB of text.` +
      (r.date ? ` Measured on ${r.date} with \`node bench/host-sockets.mjs --write\`, apart from the full run.` : '') +
      (r.loadavg ? ` Load average ${r.loadavg[0]} before, ${r.loadavg[1]} after (2 cores, shared).` : ''),
    '',
    table(
      ['read', 'wall', 'CPU', 'of which in the kernel', '/ sock_diag: wall, CPU', 'what it saw'],
      Object.entries(r.results).map(([name, m]) => [
        LABELS[name] ?? name,
        `${m.wallMs} ms`,
        `${m.cpuMs} ms`,
        m.kernelMs === undefined ? 'n/a' : `${m.kernelMs} ms`,
        `${fmtRatio(m.wallMs / base.wallMs)}, ${fmtRatio(m.cpuMs / base.cpuMs)}`,
        Object.entries(m.seen ?? {})
          .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toLocaleString('en') : v}`)
          .join(', '),
      ]),
    ),
    '',
    `/proc parsed in Rust / sock_diag: **${fmtRatio(r.ratio_proc_rust_vs_sock_diag)}** wall, ` +
      `**${fmtRatio(r.cpu_ratio_proc_rust_vs_sock_diag)}** CPU; parsed in JavaScript: ` +
      `**${fmtRatio(r.ratio_proc_js_vs_sock_diag)}** wall, **${fmtRatio(r.cpu_ratio_proc_js_vs_sock_diag)}** CPU. ` +
      `Reading /proc's text alone, unparsed, takes ${fmtRatio(r.results.proc_read.cpuMs / base.cpuMs)} the CPU of ` +
      "sock_diag's whole read. `porter doctor` reads sock_diag " +
      '(binary records, the kernel filters by state) and falls back to /proc/net/tcp where netlink is missing.',
  ];
}

if (process.argv.includes('--client')) {
  await client(JSON.parse(process.argv[process.argv.indexOf('--client') + 1]));
} else if (!runIfChild(child) && process.argv[1] === self) {
  const quick = process.argv.includes('--quick');
  const r = await runHostSockets({ quick });
  if (process.argv.includes('--write') && !quick && r.results) writeResult('host-sockets', r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
