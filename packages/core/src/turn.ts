/**
 * Keeping the event loop turning. Connects usually settle at once on loopback, so a loop
 * of awaited connects could run without the event loop ever turning, starving close
 * events (which release ports), timers and other sockets. Every so many connects, one
 * waits until the loop has turned.
 */

/** Connects started since the event loop last reached its check phase. */
let connectsSinceTurn = 0;
/** How many connects may start before one waits for the event loop to turn. */
const CONNECTS_PER_TURN = 32;

function resetConnectCount(): void {
  connectsSinceTurn = 0;
}

/** Counts a connect; true when it should wait for the event loop first. */
export function countConnect(): boolean {
  if (connectsSinceTurn === 0) setImmediate(resetConnectCount);
  connectsSinceTurn += 1;
  return connectsSinceTurn > CONNECTS_PER_TURN;
}

/**
 * Resolves once the event loop has gone through a close phase: two check phases apart,
 * so the closes of sockets destroyed before the call have run (and released their ports).
 */
export function afterCloses(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
