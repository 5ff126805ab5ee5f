/**
 * Ports for tests, never fixed ones: a loopback port free right now (`freePort`), a block
 * of ports outside the kernel's ephemeral range for porter to bind (`findFreePortBlock`),
 * and the kernel's ephemeral range itself.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A TCP port on `host` that was free a moment ago (bound with port 0, then closed). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether every port of [first, first + size) can be listened on at `host` now. */
async function blockIsFree(host: string, first: number, size: number): Promise<boolean> {
  const servers = await Promise.all(
    Array.from(
      { length: size },
      (_, i) =>
        new Promise<ReturnType<typeof createServer> | undefined>((resolve) => {
          const server = createServer();
          server.once('error', () => resolve(undefined));
          server.listen({ host, port: first + i, exclusive: true }, () => resolve(server));
        }),
    ),
  );
  await Promise.all(
    servers.map((s) => (s === undefined ? undefined : new Promise<void>((resolve) => s.close(() => resolve())))),
  );
  return servers.every((s) => s !== undefined);
}

/** The kernel's ephemeral range here (net.ipv4.ip_local_port_range). */
export function ephemeralRange(): [number, number] {
  const [first, last] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [first as number, last as number];
}

/** The ports of net.ipv4.ip_local_reserved_ports ("8080,9000-9010"). */
function reservedPorts(): Set<number> {
  const reserved = new Set<number>();
  for (const part of readFileSync('/proc/sys/net/ipv4/ip_local_reserved_ports', 'utf8').trim().split(',')) {
    if (part === '') continue;
    const [a, b = a] = part.split('-').map(Number) as [number, number?];
    for (let p = a; p <= b; p++) reserved.add(p);
  }
  return reserved;
}

/** The tcp ports /etc/services names (none when it is absent): porter leaves them out by default. */
export function servicePorts(): Set<number> {
  let text = '';
  try {
    text = readFileSync('/etc/services', 'utf8');
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    const m = /^\S+\s+(\d+)\/tcp\b/.exec(line.replace(/#.*/, ''));
    if (m) ports.add(Number(m[1]));
  }
  return ports;
}

/**
 * `[first, last]` less the ports /etc/services names, as inclusive intervals: the ports
 * porter binds itself there by default (`servicePorts: 'avoid'`).
 */
export function withoutServicePorts(first: number, last: number): [number, number][] {
  const named = [...servicePorts()].filter((p) => p >= first && p <= last).sort((a, b) => a - b);
  const out: [number, number][] = [];
  let next = first;
  for (const p of named) {
    if (p > next) out.push([next, p - 1]);
    next = p + 1;
  }
  if (next <= last) out.push([next, last]);
  return out;
}

/**
 * A block of `size` consecutive ports outside the kernel's ephemeral range, its reserved
 * ports and the ports /etc/services names (so the kernel never hands them out by itself,
 * and porter binds every one of them explicitly by default), on which nothing listens
 * now. Picked at random, so that test files running at the same time rarely share one.
 */
export async function findFreePortBlock(size: number, hosts: string[] = ['0.0.0.0']): Promise<[number, number]> {
  const [ephemeralFirst, ephemeralLast] = ephemeralRange();
  const reserved = reservedPorts();
  for (const p of servicePorts()) reserved.add(p);
  // Below the ephemeral range from 10,000 (clear of the usual services), else above it.
  const spans = [
    [10_000, ephemeralFirst - 1],
    [Math.max(10_000, ephemeralLast + 1), 65_535],
  ].filter(([lo, hi]) => (hi as number) - (lo as number) + 1 >= size) as [number, number][];
  if (spans.length === 0) throw new Error(`no room for ${size} ports outside ${ephemeralFirst}-${ephemeralLast}`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const [lo, hi] = spans[attempt % spans.length] as [number, number];
    const first = lo + Math.floor(Math.random() * (hi - lo + 2 - size));
    if (Array.from({ length: size }, (_, i) => first + i).some((p) => reserved.has(p))) continue;
    let free = true;
    for (const host of hosts) {
      if (!(await blockIsFree(host, first, size))) {
        free = false;
        break;
      }
    }
    if (free) return [first, first + size - 1];
  }
  throw new Error(`no free block of ${size} ports found`);
}
