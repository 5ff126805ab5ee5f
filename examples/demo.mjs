// porter demo: thousands of connections to two local servers through one small port
// range, the same local ports serving both destinations.
//   npm run demo                      3,000 connections to each server
//   npm run demo -- 5000              another number per server
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Porter } from '@porter/core';

const perDestination = Number(process.argv[2] ?? 3000);
if (!Number.isInteger(perDestination) || perDestination < 1 || perDestination > 8000) {
  throw new RangeError('connections per server: an integer from 1 to 8000 (the open-file limit is shared)');
}
const first = 20000;
const range = [first, first + perDestination - 1];
const concurrency = 256;

const server = spawn(process.execPath, [fileURLToPath(new URL('./hold-server.mjs', import.meta.url))], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const [line] = await once(server.stdout, 'data');
const { ports } = JSON.parse(line.toString());

// Retries step over ports some other program on this host may hold; the kernel fallback
// stays on, as by default, and any port it picks is counted below.
const porter = new Porter({ portRange: range, agingMs: 5_000, retry: { attempts: 16 } });
console.log(`porter demo: ${perDestination} connections to each of 127.0.0.1:${ports[0]} and 127.0.0.1:${ports[1]}`);
console.log(`local port range ${range[0]}-${range[1]} (${perDestination} ports) for ${2 * perDestination} connections`);

const started = performance.now();
const sockets = [];
let next = 0;
const jobs = [];
for (const port of ports) for (let i = 0; i < perDestination; i++) jobs.push(port);
async function worker() {
  while (next < jobs.length) {
    const port = jobs[next++];
    sockets.push(await porter.connect({ host: '127.0.0.1', port, timeout: 10_000 }));
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = performance.now() - started;

const byDestination = new Map(ports.map((p) => [p, new Set()]));
for (const s of sockets) byDestination.get(s.remotePort).add(s.localPort);
const [a, b] = ports.map((p) => byDestination.get(p));
const shared = [...a].filter((p) => b.has(p)).length;
console.log(
  `\nopened ${sockets.length} connections in ${elapsed.toFixed(0)} ms (${((sockets.length / elapsed) * 1000).toFixed(0)}/s)`,
);
console.log(
  `local ports used: ${a.size} towards :${ports[0]}, ${b.size} towards :${ports[1]}, ${shared} of them serving both`,
);
const stats = porter.stats();
console.log(`retries: ${JSON.stringify(stats.retries)}, kernel fallbacks: ${stats.kernelFallbacks}`);

const show = (title) => {
  console.log(`\n${title}`);
  for (const pool of porter.snapshot()) {
    const inUse = pool.inUse.length;
    const span = inUse ? ` (${pool.inUse[0]}..${pool.inUse[inUse - 1]})` : '';
    console.log(
      `  ${pool.localAddress} -> ${pool.remoteAddress}:${pool.remotePort}  in use ${inUse}${span}, aging ${pool.aging.length}, free ${pool.free}`,
    );
  }
};
show('pools while connected:');

// This side closes first: every port goes into aging (TIME_WAIT is ours).
await Promise.all(
  sockets.map((s) => {
    const closed = once(s, 'close');
    s.end();
    return closed;
  }),
);
show(`pools after closing from this side (ports age for ${porter.options.agingMs} ms):`);

server.stdin.end();
await once(server, 'exit');
