/**
 * Sockets in tests: waiting until one has connected; closing them and waiting until they
 * have closed: one, all of them, or every socket of a test at its teardown (then its
 * servers stop).
 */
import type { Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import type { ServerGroup } from './servers.mjs';

/** Resolves with `make()`'s socket once it emitted 'connect'; rejects with its 'error' before that. */
export function connected(make: () => Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = make();
    socket.once('connect', () => resolve(socket)).once('error', reject);
  });
}

/** Resolves when `socket` emits 'close' (at once if it has closed already). */
export function closed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Ends `socket` (this side closes first) and waits for 'close'. */
export async function endAndWait(socket: Socket): Promise<void> {
  const done = closed(socket);
  socket.end();
  await done;
}

/** Destroys every socket and waits for them all to close. */
export async function destroyAll(sockets: Iterable<Socket>): Promise<void> {
  const list = [...sockets];
  const done = Promise.all(list.map(closed));
  for (const s of list) s.destroy();
  await done;
}

/**
 * An array for the sockets a test opens: at the test's teardown they are destroyed, then
 * `servers` stop.
 */
export function closeAtTeardown(t: ExecutionContext, servers: ServerGroup): Socket[] {
  const sockets: Socket[] = [];
  t.teardown(async () => {
    await destroyAll(sockets);
    await servers.stop();
  });
  return sockets;
}
