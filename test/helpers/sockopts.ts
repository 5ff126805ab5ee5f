/**
 * The kernel's view of a socket's options. Node can set TCP_NODELAY and SO_KEEPALIVE but
 * not read them back, and cannot see the options porter's `socketOptions` set at all, so
 * the socket is handed to a perl process as its descriptor 3 (the same open socket,
 * shared), which reads them with getsockopt(2). perl and its Socket module come with
 * Debian's perl-base, which every Debian system has.
 */
import type { Socket } from 'node:net';
import { commandMissing } from './programs.js';
import { run } from './run.mjs';

/** What getsockopt(2) says about a TCP socket. */
export interface KernelSocketOptions {
  /** TCP_NODELAY. */
  noDelay: boolean;
  /** SO_KEEPALIVE. */
  keepAlive: boolean;
  /** TCP_KEEPIDLE: seconds of idleness before the first keep-alive probe. */
  keepAliveIdleSeconds: number;
}

const READ = String.raw`
use Socket qw(:all);
open(my $s, '+<&=', 3) or die "fd 3: $!";
my @out;
for my $o ([IPPROTO_TCP, TCP_NODELAY], [SOL_SOCKET, SO_KEEPALIVE], [IPPROTO_TCP, TCP_KEEPIDLE]) {
  my $v = getsockopt($s, $o->[0], $o->[1]);
  defined $v or die "getsockopt: $!";
  push @out, unpack('i', $v);
}
print join(' ', @out), "\n";
`;

/** Why the options cannot be read here (no perl with Socket), or undefined. */
export const sockoptReaderMissing = (): string | undefined => commandMissing('perl', ['-MSocket', '-e', '1']);

/** Reads `socket`'s options from the kernel. */
export async function kernelSocketOptions(socket: Socket): Promise<KernelSocketOptions> {
  const r = await run('perl', ['-e', READ], { stdio: ['ignore', 'pipe', 'pipe', socket], timeoutMs: 30_000 });
  const values = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || values.length !== 3 || values.some(Number.isNaN)) {
    throw new Error(`reading socket options failed (exit ${r.code ?? r.signal}): ${r.stderr}${r.stdout}`);
  }
  const [noDelay, keepAlive, idle] = values as [number, number, number];
  return { noDelay: noDelay !== 0, keepAlive: keepAlive !== 0, keepAliveIdleSeconds: idle };
}

/** Every option `socketOptions` sets, as getsockopt(2) reads it back. */
export interface PorterSocketOptions {
  /** TCP_USER_TIMEOUT, ms (0: the kernel's default). */
  userTimeoutMs: number;
  /** SO_KEEPALIVE. */
  keepAlive: boolean;
  /** TCP_KEEPIDLE, TCP_KEEPINTVL (seconds), TCP_KEEPCNT. */
  keepIdle: number;
  keepIntvl: number;
  keepCnt: number;
  /** SO_MARK. */
  mark: number;
  /** SO_BINDTODEVICE ('' when none). */
  device: string;
  /** IP_TOS (IPv4) or IPV6_TCLASS (IPv6). */
  tos: number;
  /** IP_FREEBIND or IPV6_FREEBIND. */
  freebind: boolean;
  /** IP_TRANSPARENT or IPV6_TRANSPARENT. */
  transparent: boolean;
  /** SO_LINGER: on, and its timeout in seconds. */
  linger: { on: boolean; seconds: number };
  /** TCP_FASTOPEN_CONNECT. */
  fastOpen: boolean;
  /** TCP_CONGESTION. */
  congestion: string;
}

// Numbers from the kernel's uapi headers (perl's Socket module lacks most of them):
// levels SOL_SOCKET 1, IPPROTO_IP 0, IPPROTO_TCP 6, IPPROTO_IPV6 41.
const READ_ALL = String.raw`
open(my $s, '+<&=', 3) or die "fd 3: $!";
my $v6 = $ARGV[0] eq '6';
my @opts = (
  ['userTimeoutMs', 6, 18, 'i'], ['keepAlive', 1, 9, 'i'], ['keepIdle', 6, 4, 'i'],
  ['keepIntvl', 6, 5, 'i'], ['keepCnt', 6, 6, 'i'], ['mark', 1, 36, 'I'],
  ['device', 1, 25, 'Z*'],
  ['tos', $v6 ? (41, 67) : (0, 1), 'i'],
  ['freebind', $v6 ? (41, 78) : (0, 15), 'i'],
  ['transparent', $v6 ? (41, 75) : (0, 19), 'i'],
  ['linger', 1, 13, 'ii'], ['fastOpen', 6, 30, 'i'], ['congestion', 6, 13, 'Z*'],
);
for my $o (@opts) {
  my ($name, $level, $opt, $format) = @$o;
  my $v = getsockopt($s, $level, $opt);
  defined $v or die "getsockopt $name: $!";
  print "$name=", join(',', unpack($format, $v)), "\n";
}
`;

/**
 * Reads back every option `socketOptions` sets from the kernel, for a socket of `family`
 * (or a descriptor of this process, a worker thread's socket's say).
 */
export async function porterSocketOptions(socket: Socket | number, family: 4 | 6): Promise<PorterSocketOptions> {
  const r = await run('perl', ['-e', READ_ALL, String(family)], {
    stdio: ['ignore', 'pipe', 'pipe', socket],
    timeoutMs: 30_000,
  });
  const v = new Map(
    r.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=') as [string, string]),
  );
  if (r.code !== 0 || v.size !== 13) {
    throw new Error(`reading socket options failed (exit ${r.code ?? r.signal}): ${r.stderr}${r.stdout}`);
  }
  const int = (name: string): number => Number(v.get(name));
  const [on, seconds] = (v.get('linger') ?? '').split(',').map(Number) as [number, number];
  return {
    userTimeoutMs: int('userTimeoutMs'),
    keepAlive: int('keepAlive') !== 0,
    keepIdle: int('keepIdle'),
    keepIntvl: int('keepIntvl'),
    keepCnt: int('keepCnt'),
    mark: int('mark'),
    device: v.get('device') ?? '',
    tos: int('tos'),
    freebind: int('freebind') !== 0,
    transparent: int('transparent') !== 0,
    linger: { on: on !== 0, seconds },
    fastOpen: int('fastOpen') !== 0,
    congestion: v.get('congestion') ?? '',
  };
}
