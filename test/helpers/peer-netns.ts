/**
 * A peer in a network namespace of its own, reached from the caller's namespace by two
 * paths, for tests of where packets go. Call it inside a namespace the test created
 * (runInNetns), as root: it changes the links, addresses, routes and rules of the
 * caller's namespace.
 *
 * The peer has 10.96.0.1 and fd96::1 on its loopback and a server on every address that
 * answers each connection with the address it came from, then ends it. From the caller
 * it is reached over two veth pairs:
 *
 *   path 1: va1 (10.97.1.1, fd97:1::1) <-> vb1 (10.97.1.2, fd97:1::2)   main table, metric 10
 *   path 2: va2 (10.97.2.1, fd97:2::1) <-> vb2 (10.97.2.2, fd97:2::2)   main table, metric 100,
 *                                                                       and table 100, which
 *                                                                       packets marked 42 use
 *
 * So a connection comes from 10.97.1.1 (fd97:1::1) by default, and from 10.97.2.1
 * (fd97:2::1) when it is bound to va2 or marked 42: the peer tells which.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

export const PEER = { v4: '10.96.0.1', v6: 'fd96::1' } as const;
export const PATH1 = { device: 'va1', v4: '10.97.1.1', v6: 'fd97:1::1' } as const;
export const PATH2 = { device: 'va2', v4: '10.97.2.1', v6: 'fd97:2::1' } as const;
/** The mark that policy routing sends by path 2. */
export const MARK = 42;

const SERVER = String.raw`
const net = require('node:net');
const server = net.createServer((s) => {
  s.on('error', () => {});
  s.end(s.remoteAddress.replace(/^::ffff:/, '') + '\n');
});
server.listen({ host: '::', port: 0 }, () => console.log(JSON.stringify({ port: server.address().port })));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export interface Peer {
  /** The peer server's port, on PEER.v4 and PEER.v6. */
  port: number;
  /** Stops the peer (its namespace goes with it). */
  stop(): void;
}

let vethChecked: { reason: string | undefined } | undefined;

/**
 * Why veth pairs cannot be made here (no namespaces, or a kernel without veth), or
 * undefined if they can: tried once, in a namespace of its own.
 */
export function vethUnavailableReason(): string | undefined {
  if (vethChecked === undefined) {
    let reason: string | undefined;
    try {
      execFileSync('unshare', ['-n', 'ip', 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'], {
        stdio: 'pipe',
        timeout: 10_000,
      });
    } catch (e) {
      reason = `cannot make a veth pair in a network namespace: ${(e as Error).message.split('\n')[0]}`;
    }
    vethChecked = { reason };
  }
  return vethChecked.reason;
}

function sh(script: string): void {
  execFileSync('sh', ['-ec', script], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Starts the peer and joins it to this namespace by the two paths. */
export async function startPeer(): Promise<Peer> {
  const child = spawn('unshare', ['-n', '--', process.execPath, '-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const { port } = JSON.parse(line) as { port: number };
  const pid = child.pid as number;
  sh(`
    ip link add va1 type veth peer name vb1 netns ${pid}
    ip link add va2 type veth peer name vb2 netns ${pid}
    ip addr add 10.97.1.1/24 dev va1; ip -6 addr add fd97:1::1/64 dev va1 nodad
    ip addr add 10.97.2.1/24 dev va2; ip -6 addr add fd97:2::1/64 dev va2 nodad
    ip link set va1 up; ip link set va2 up
    nsenter -t ${pid} -n sh -ec '
      ip link set lo up
      ip addr add 10.96.0.1/32 dev lo; ip -6 addr add fd96::1/128 dev lo nodad
      ip addr add 10.97.1.2/24 dev vb1; ip -6 addr add fd97:1::2/64 dev vb1 nodad
      ip addr add 10.97.2.2/24 dev vb2; ip -6 addr add fd97:2::2/64 dev vb2 nodad
      ip link set vb1 up; ip link set vb2 up'
    ip route add 10.96.0.1/32 via 10.97.1.2 dev va1 metric 10
    ip route add 10.96.0.1/32 via 10.97.2.2 dev va2 metric 100
    ip -6 route add fd96::1/128 via fd97:1::2 dev va1 metric 10
    ip -6 route add fd96::1/128 via fd97:2::2 dev va2 metric 100
    ip rule add fwmark ${MARK} lookup 100
    ip route add 10.96.0.1/32 via 10.97.2.2 dev va2 table 100
    ip -6 rule add fwmark ${MARK} lookup 100
    ip -6 route add fd96::1/128 via fd97:2::2 dev va2 table 100
  `);
  // Both families answer before the peer is handed over (the links take a moment to come up).
  for (const host of [PEER.v4, PEER.v6]) {
    for (;;) {
      try {
        await fromWhere(connect({ host, port }));
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
  return { port, stop: () => child.kill() };
}

/** What the peer answered on `socket`: the address the connection came from. */
export async function fromWhere(socket: import('node:net').Socket): Promise<string> {
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    data += d;
  });
  await once(socket, 'end');
  socket.destroy();
  return data.trim();
}
