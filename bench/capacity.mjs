/**
 * Capacity: how many connections one range of N local ports gives, in a private network
 * namespace whose ip_local_port_range is that range, against two destinations (two
 * listening ports of one server process in the same namespace).
 *
 *   a. the kernel, bind(127.0.0.1, 0) before connect (net.connect with localAddress)
 *   b. the kernel, plain connect() (net.connect without localAddress)
 *   c. porter with portRange = the range, kernelFallback false: N to each destination at
 *      the same time, then a clean ERR_PORTER_EXHAUSTED
 *
 * Each case runs in a namespace of its own. Run directly: node bench/capacity.mjs [N].
 */
import { fileURLToPath } from 'node:url';
import { drive, netConnect } from './lib/connectors.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { startServer } from './lib/spawn-server.mjs';
import { log } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);
/** The range starts below the default ephemeral range, where the server's own ports are. */
const RANGE_FIRST = 20000;

export async function runCapacity({ quick = false, ports } = {}) {
  const n = ports ?? (quick ? 2000 : 4000);
  const range = [RANGE_FIRST, RANGE_FIRST + n - 1];
  const result = { ports: n, range, cases: {} };
  for (const kase of ['bind_then_connect', 'plain_connect', 'porter']) {
    log(`capacity: ${kase}, ${n} ports`);
    result.cases[kase] = await runInNamespace(self, { kase, range }, { timeoutMs: 180_000 });
  }
  const a = result.cases.bind_then_connect;
  const b = result.cases.plain_connect;
  const c = result.cases.porter;
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
    porter_exact:
      Array.isArray(c.okByTarget) &&
      c.okByTarget.every((x) => x === n) &&
      Array.isArray(c.exhaustedCodes) &&
      c.exhaustedCodes.every((code) => code === 'ERR_PORTER_EXHAUSTED'),
  };
  return result;
}

async function child(config) {
  const { kase, range, hostNetns } = config;
  const n = range[1] - range[0] + 1;
  // Loopback up; the server takes its ports from the default range, then the range is set.
  setupNamespace(hostNetns, null);
  const server = await startServer({ count: 2, mode: 'keep', host: '127.0.0.1' });
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
    const porter = new Porter({ portRange: range, kernelFallback: false });
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

if (!runIfChild(child) && process.argv[1] === self) {
  const n = Number(process.argv[2]) || undefined;
  const r = await runCapacity({ ports: n });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
