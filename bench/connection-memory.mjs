/**
 * Memory per open connection: in a private network namespace, a process opens and holds
 * 15,000 connections to one destination (a listener in another process that never
 * accepts: its accept queue holds them) with porter.connect (default options), another
 * with porter.createConnection, another with net.connect; each reports how much its RSS
 * and its JavaScript heap grew, after a garbage collection, per connection. The ratios
 * are porter's over net.connect's, measured in the same run, one method after the other,
 * in a different order each round.
 *
 * Then what each connect allocates on the JavaScript heap, garbage included: each method
 * again in a process of its own, whose young generation is made large enough that no
 * garbage collection runs while it opens 3,000 connections, so that the heap's growth is
 * every byte allocated. That is what makes V8's young generation grow (a step of several
 * megabytes that RSS per connection shows at a few thousand connections held and
 * amortises at 15,000): a connect path that allocates more shows here even when what a
 * socket keeps does not change.
 *
 * Run directly: node bench/connection-memory.mjs [--quick]. Last line: JSON.
 */
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason } from '../test/helpers/netns.mjs';
import { run } from '../test/helpers/run.mjs';
import { startServers } from '../test/helpers/servers.mjs';
import { finiteOrNull, fmtRatio, table } from './lib/format.mjs';
import { runIfChild, runInNamespace, setupNamespace } from './lib/netns.mjs';
import { lastJsonLine, log, median, rotate, tail } from './lib/util.mjs';

const self = fileURLToPath(import.meta.url);

const gc = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
};

/** The methods, as the holders name them, and as the report shows them. */
const METHODS = ['porter', 'createConnection', 'net'];
const LABELS = { porter: '`porter.connect`', createConnection: '`porter.createConnection`', net: '`net.connect`' };

/** Connections each allocation holder opens (within its young generation, with room to spare). */
const ALLOCATION_COUNT = 3_000;
/** The young generation's semi-space of an allocation holder, in MB: 3,000 connects fit many times over. */
const ALLOCATION_SEMI_SPACE_MB = 128;

/**
 * Opens one connection of `method` to `port`, resolving once connected. net.connect's and
 * createConnection's sockets are waited for the same way, and the waiting leaves nothing
 * on the socket (both listeners go once it settles), as porter.connect's promise leaves
 * nothing on its sockets: every method's socket holds only what the method itself keeps.
 */
async function opener(method, port) {
  const { Porter } = await import('@porter/core');
  const porter = new Porter();
  if (method === 'porter') return () => porter.connect({ host: '127.0.0.1', port });
  const make =
    method === 'createConnection'
      ? () => porter.createConnection({ host: '127.0.0.1', port })
      : () => netConnect({ host: '127.0.0.1', port });
  return () =>
    new Promise((resolve, reject) => {
      const s = make();
      const onConnect = () => {
        s.off('error', onError);
        resolve(s);
      };
      const onError = (err) => {
        s.off('connect', onConnect);
        reject(err);
      };
      s.once('connect', onConnect).once('error', onError);
    });
}

/** Opens and closes 500 connections (the addon, its socket reserve, the JIT), then collects. */
async function warmUp(open) {
  const warm = [];
  for (let i = 0; i < 500; i++) warm.push(await open());
  for (const s of warm) s.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  await gc();
}

/** One method in a process of its own: holds `count` connections, reports its growth. */
async function holder(method, port, count) {
  const open = await opener(method, port);
  await warmUp(open);
  const before = process.memoryUsage();
  const held = [];
  for (let i = 0; i < count; i++) held.push(await open());
  await gc();
  const after = process.memoryUsage();
  const result = {
    method,
    held: held.length,
    rssPerConnection: (after.rss - before.rss) / held.length,
    heapPerConnection: (after.heapUsed - before.heapUsed) / held.length,
  };
  for (const s of held) s.resetAndDestroy();
  return result;
}

/**
 * One method in a process of its own whose young generation holds everything `count`
 * connects allocate: the heap's growth over the loop, per connect, is what they allocated.
 * A garbage collection during the loop would make that too little: the result is then an
 * error, not a figure.
 */
async function allocator(method, port, count) {
  const open = await opener(method, port);
  await warmUp(open);
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  const held = new Array(count);
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) held[i] = await open();
  const after = process.memoryUsage().heapUsed;
  // The observer hears of a collection a turn later.
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  for (const s of held) s.resetAndDestroy();
  if (collections > 0) return { method, error: `${collections} garbage collections ran while it connected` };
  return { method, connects: count, allocatedPerConnect: (after - before) / count };
}

async function runHolder(method, port, count, role = 'holder') {
  const flags =
    role === 'allocator'
      ? [`--min-semi-space-size=${ALLOCATION_SEMI_SPACE_MB}`, `--max-semi-space-size=${ALLOCATION_SEMI_SPACE_MB}`]
      : [];
  const res = await run(process.execPath, [
    '--expose-gc',
    ...flags,
    self,
    `--${role}`,
    method,
    String(port),
    String(count),
  ]);
  const json = lastJsonLine(res.stdout);
  return res.code === 0 && json ? json : { method, error: `exit ${res.code}: ${tail(res.stderr, 3)}` };
}

/** Each method's holder of `role` in turn, in `order`, each against a fresh listener. */
async function inTurn(order, role, count) {
  const results = {};
  for (const method of order) {
    // A fresh listener each time: its accept queue holds only this run's connections.
    const listener = await startServers({ mode: 'no-accept', backlog: 65535, lifetimeMs: 600_000 });
    results[method] = await runHolder(method, listener.ports[0], count, role);
    await listener.stop();
  }
  return results;
}

/** One method's figure for a progress line, or its error. */
const figure = (r, field) => (r.error ? `${r.method} ${r.error}` : `${r.method} ${r[field].toFixed(0)} B`);

async function child(config) {
  setupNamespace(config.hostNetns, null);
  writeFileSync('/proc/sys/net/core/somaxconn', '65535\n');
  const rounds = [];
  const allocationRounds = [];
  for (let round = 0; round < config.rounds; round++) {
    const order = rotate(METHODS, round);
    const results = await inTurn(order, 'holder', config.count);
    log(
      `  round ${round + 1}: ${Object.values(results)
        .map((r) =>
          r.error
            ? `${r.method} ${r.error}`
            : `${r.method} ${r.rssPerConnection.toFixed(0)} B RSS, ${r.heapPerConnection.toFixed(0)} B heap`,
        )
        .join('; ')}`,
    );
    rounds.push(results);
    const allocation = await inTurn(order, 'allocator', config.allocationCount);
    log(
      `  round ${round + 1}, allocated per connect: ${Object.values(allocation)
        .map((r) => figure(r, 'allocatedPerConnect'))
        .join('; ')}`,
    );
    allocationRounds.push(allocation);
  }
  /** The median over the rounds where both `method` and net.connect were measured. */
  const med = (list, method, f) => {
    const ok = list.filter((r) => r[method] && !r[method].error && !r.net.error);
    return ok.length ? median(ok.map(f)) : null;
  };
  return {
    count: config.count,
    rounds,
    porterRssPerConnection: med(rounds, 'porter', (r) => r.porter.rssPerConnection),
    createConnectionRssPerConnection: med(rounds, 'createConnection', (r) => r.createConnection.rssPerConnection),
    netRssPerConnection: med(rounds, 'net', (r) => r.net.rssPerConnection),
    porterHeapPerConnection: med(rounds, 'porter', (r) => r.porter.heapPerConnection),
    createConnectionHeapPerConnection: med(rounds, 'createConnection', (r) => r.createConnection.heapPerConnection),
    netHeapPerConnection: med(rounds, 'net', (r) => r.net.heapPerConnection),
    rssRatio: med(rounds, 'porter', (r) => r.porter.rssPerConnection / r.net.rssPerConnection),
    heapRatio: med(rounds, 'porter', (r) => r.porter.heapPerConnection / r.net.heapPerConnection),
    createConnectionRssRatio: med(
      rounds,
      'createConnection',
      (r) => r.createConnection.rssPerConnection / r.net.rssPerConnection,
    ),
    createConnectionHeapRatio: med(
      rounds,
      'createConnection',
      (r) => r.createConnection.heapPerConnection / r.net.heapPerConnection,
    ),
    allocation: {
      count: config.allocationCount,
      rounds: allocationRounds,
      porterPerConnect: med(allocationRounds, 'porter', (r) => r.porter.allocatedPerConnect),
      createConnectionPerConnect: med(
        allocationRounds,
        'createConnection',
        (r) => r.createConnection.allocatedPerConnect,
      ),
      netPerConnect: med(allocationRounds, 'net', (r) => r.net.allocatedPerConnect),
      porterRatio: med(allocationRounds, 'porter', (r) => r.porter.allocatedPerConnect / r.net.allocatedPerConnect),
      createConnectionRatio: med(
        allocationRounds,
        'createConnection',
        (r) => r.createConnection.allocatedPerConnect / r.net.allocatedPerConnect,
      ),
    },
  };
}

export async function runConnectionMemory({ quick = false } = {}) {
  const why = netnsUnavailableReason();
  if (why !== undefined) return { skipped: why };
  const config = { count: 15_000, rounds: quick ? 1 : 3, allocationCount: ALLOCATION_COUNT };
  log(
    `connection memory: ${config.count} connections held, then ${config.allocationCount} connects' allocation, ${config.rounds} rounds`,
  );
  return runInNamespace(self, config, { timeoutMs: 600_000 });
}

/** The headline figures of this benchmark, for bench/run.mjs's summary (the targets read the first two). */
export function connectionMemorySummary(r) {
  return {
    connection_rss_ratio: finiteOrNull(r?.rssRatio),
    connection_heap_ratio: finiteOrNull(r?.heapRatio),
    connection_create_connection_rss_ratio: finiteOrNull(r?.createConnectionRssRatio),
    connection_create_connection_heap_ratio: finiteOrNull(r?.createConnectionHeapRatio),
    connect_allocated_ratio: finiteOrNull(r?.allocation?.porterRatio),
    create_connection_allocated_ratio: finiteOrNull(r?.allocation?.createConnectionRatio),
  };
}

/** This benchmark's part of docs/benchmarks.md (lines, without the heading). */
export function connectionMemoryReport(r) {
  const b = (v) => (typeof v === 'number' ? `${v.toFixed(0)} B` : 'n/a');
  const x = (v) => `**${fmtRatio(v)}**`;
  const a = r.allocation;
  const rows = {
    porter: [b(r.porterRssPerConnection), x(r.rssRatio), b(r.porterHeapPerConnection), x(r.heapRatio)],
    createConnection: [
      b(r.createConnectionRssPerConnection),
      x(r.createConnectionRssRatio),
      b(r.createConnectionHeapPerConnection),
      x(r.createConnectionHeapRatio),
    ],
    net: [b(r.netRssPerConnection), '1.00x', b(r.netHeapPerConnection), '1.00x'],
  };
  const allocated = {
    porter: [b(a?.porterPerConnect), x(a?.porterRatio)],
    createConnection: [b(a?.createConnectionPerConnect), x(a?.createConnectionRatio)],
    net: [b(a?.netPerConnect), '1.00x'],
  };
  // A run from before createConnection was measured shows the methods it measured.
  const methods = METHODS.filter((m) => r.rounds.some((round) => round[m] !== undefined));
  const names = methods.map((m) => LABELS[m]);
  const list = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  const awaited = methods.filter((m) => m !== 'porter').map((m) => LABELS[m]);
  const header = ['method', 'RSS per connection', '/ net.connect', 'JS heap per connection', '/ net.connect'];
  return [
    `In a private network namespace, a process holds ${r.count.toLocaleString('en')} connections to one ` +
      'destination (whose accept queue holds them; the listener is another process), opened one at a time with ' +
      `${list.replace('`porter.connect`', '`porter.connect` (default options)')}; each method in a process of its ` +
      `own, in turn, ${r.rounds.length} rounds. Growth of RSS and of the JavaScript heap after a garbage ` +
      `collection, per connection; medians of the rounds and of each round's ratio to \`net.connect\`. ` +
      `${awaited.join(' and ')} ${awaited.length > 1 ? 'are' : 'is'} awaited through a promise of the socket's ` +
      '`connect` event whose listeners are removed once it settles, so no socket keeps anything of the ' +
      'benchmark.' +
      (a
        ? ' Allocated per connect: how much the JavaScript heap grew, garbage included, while a process of its ' +
          `own opened ${a.count.toLocaleString('en')} connections with a young generation large enough that no ` +
          "garbage collection ran. V8's young generation grows with what connects allocate, by steps of " +
          'megabytes, which RSS per connection shows at a few thousand connections held more than at this many.'
        : ''),
    '',
    table(
      a ? [...header, 'allocated per connect', '/ net.connect'] : header,
      methods.map((m) => [LABELS[m], ...rows[m], ...(a ? allocated[m] : [])]),
    ),
  ];
}

const role = ['holder', 'allocator'].find((r) => process.argv.includes(`--${r}`));
if (role !== undefined) {
  const [method, port, count] = process.argv.slice(process.argv.indexOf(`--${role}`) + 1);
  const result = await (role === 'holder' ? holder : allocator)(method, Number(port), Number(count));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (!runIfChild(child) && process.argv[1] === self) {
  const r = await runConnectionMemory({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
