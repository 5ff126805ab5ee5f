/**
 * The kernel's view of a socket's options. Node can set TCP_NODELAY and SO_KEEPALIVE but
 * not read them back, so the socket is handed to a perl process as its descriptor 3 (the
 * same open socket, shared), which reads them with getsockopt(2). perl and its Socket
 * module come with Debian's perl-base, which every Debian system has.
 */
import type { Socket } from 'node:net';
import { commandMissing } from './requirements.js';
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
