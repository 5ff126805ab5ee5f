/**
 * What the cases of the @porter/core corpus run against: a Porter on a free block of 64
 * ports and a TCP server to connect to, started before the cases (core.test.ts) and read
 * by them when they run; and the expectations and inputs the areas share.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Porter } from '@porter/core';
import type { Expect } from '../../helpers/corpus.js';
import { findFreePortBlock } from '../../helpers/ports.js';

export let porter: Porter;
/** The server's port. */
export let port = 0;
let server: Server | undefined;

export async function start(): Promise<void> {
  const [first, last] = await findFreePortBlock(64);
  porter = new Porter({ portRange: [first, last], agingMs: 0, kernelFallback: false });
  const listening = createServer((s) => s.on('error', () => {}).resume());
  server = listening;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  port = (listening.address() as { port: number }).port;
}

export function stop(): void {
  server?.close();
}

export const accepts = (check: (value: unknown) => boolean | undefined = () => true): Expect => ({ accepts: check });
/** A connect that succeeds: its socket is closed, so that nothing stays in use. */
export const connected = {
  accepts: async (value: unknown): Promise<boolean> => {
    const socket = value as Socket;
    const ok = socket.remotePort === port;
    const closed = once(socket, 'close');
    socket.destroy();
    await closed;
    return ok;
  },
} satisfies Expect;
export const NaN_ = Number.NaN;
export const INF = Number.POSITIVE_INFINITY;
/** `f` on a Porter that was closed. */
export const closedPorter = (f: (p: Porter) => unknown) => () => {
  const p = new Porter({ portRange: [40_000, 40_001] });
  p.close();
  return f(p);
};
