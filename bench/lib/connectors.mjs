/**
 * The ways of connecting that the benchmarks compare, each as a function returning a
 * promise of a connected socket, and a driver that opens many with bounded concurrency.
 */
import net from 'node:net';
import tls from 'node:tls';

const ignore = () => {};

/** Resolves to `socket` once it emits `event`, rejects on an error before; later errors are ignored. */
function settled(socket, event) {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once(event, () => {
      socket.off('error', reject);
      socket.on('error', ignore);
      resolve(socket);
    });
  });
}

/** net.connect as a promise; the socket is connected when it resolves. */
export const netConnect = async (options) => settled(net.connect(options), 'connect');

/** tls.connect as a promise, resolved after the handshake. */
export const tlsConnect = async (options) => settled(tls.connect(options), 'secureConnect');

/** Wraps a promise-returning connect so that the socket it gives ignores late errors. */
export function quiet(connect) {
  return async (target) => {
    const socket = await connect(target);
    socket.on('error', ignore);
    return socket;
  };
}

/**
 * Opens connections with `connect(target)` over `targets` in turn, `concurrency` at a
 * time, until `total` succeeded, `maxAttempts` were made, or `stopAfterFailures`
 * failed in a row. Keeps the sockets (unless `keep` is false: then each is left to the
 * server to close). Resolves to { ok, okByTarget, errors, sockets, elapsedMs }.
 */
export async function drive(connect, targets, options) {
  const { concurrency, total = Number.POSITIVE_INFINITY, keep = true } = options;
  const maxAttempts = options.maxAttempts ?? total;
  const stopAfterFailures = options.stopAfterFailures ?? Number.POSITIVE_INFINITY;
  const okByTarget = targets.map(() => 0);
  const errors = {};
  const sockets = [];
  let attempts = 0;
  let ok = 0;
  let failuresInRow = 0;
  let inFlight = 0;
  const start = performance.now();
  const more = () => attempts < maxAttempts && ok + inFlight < total && failuresInRow < stopAfterFailures;
  async function worker() {
    while (more()) {
      const index = attempts % targets.length;
      attempts++;
      inFlight++;
      try {
        const socket = await connect(targets[index]);
        inFlight--;
        ok++;
        okByTarget[index]++;
        failuresInRow = 0;
        if (keep) sockets.push(socket);
      } catch (err) {
        inFlight--;
        failuresInRow++;
        const code = err?.code ?? err?.message ?? String(err);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, okByTarget, attempts, errors, sockets, elapsedMs: performance.now() - start };
}

/** Closes sockets with a reset (no TIME_WAIT on either side) and waits for them to close. */
export async function resetAll(sockets) {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', resolve);
          if (typeof s.resetAndDestroy === 'function' && !s.connecting) s.resetAndDestroy();
          else s.destroy();
        }),
    ),
  );
}
