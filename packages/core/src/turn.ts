/**
 * Keeping the event loop turning as net.connect does. On loopback a connect is usually
 * over when `connect()` returns, and the core hands it back at once; settled there, a
 * loop of awaited connects would never let the event loop reach its poll phase. Since
 * libuv 1.45 (Node 20) a listening socket accepts one connection per poll phase, so a
 * server in the same process fell behind (two accepts for every 33 connects), its accept
 * queue overflowed and SYNs were dropped (a second each, the kernel's retransmission);
 * close events (which release ports), timers and other sockets waited too.
 *
 * `net.connect` learns that its connect is over from the poll phase, a loop turn after
 * the connect began. A porter connect that settled at once is handed over a turn later
 * too: in the next check phase, with every other connect that settled before it (one
 * shared `setImmediate`, not one per connect). An awaited loop starts each connect in
 * the check phase where the previous one was handed over, so each waits for the next
 * turn's, past a poll phase.
 */

/** Settles in the next check phase; shared by everything that waits in this turn. */
let turn: Promise<void> | undefined;

function nextCheck(resolve: () => void): void {
  setImmediate(() => {
    turn = undefined;
    resolve();
  });
}

/** Resolves in the next check phase (the next turn's, when called in a check phase). */
export function nextTurn(): Promise<void> {
  turn ??= new Promise(nextCheck);
  return turn;
}
