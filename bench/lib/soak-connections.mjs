/**
 * The connections of bench/soak.mjs, one kind each, and the servers they go to (child
 * processes of test/helpers/servers.mjs: an echo listener, a listener that resets on the
 * first data, one whose accept queue is full because it never accepts) and a port where
 * nothing listens.
 */
import net from 'node:net';
import { fillAcceptQueue, startNamedServers, startServers } from '../../test/helpers/servers.mjs';

export const KINDS = ['ok', 'refused', 'reset', 'timeout', 'abort', 'destroy'];
export const FAULTS = KINDS.slice(1);
/** What each kind of connection should end with. */
export const EXPECTED = {
  ok: 'ok',
  refused: 'ECONNREFUSED',
  reset: 'ECONNRESET',
  timeout: 'ETIMEDOUT',
  abort: 'ABORT_ERR',
  destroy: 'destroyed',
};
const PAYLOAD = Buffer.alloc(64, 'porter soak ');

/** A port the kernel gave to a listener closed again: connects to it are refused. */
function refusedPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The servers for a run of `durationMs`: resolves to `{ targets: { echo, reset, refused,
 * noAccept }, count(), stop() }` (`count()`: the connections the echo and reset listeners
 * accepted, and those open).
 */
export async function startTargets(durationMs) {
  const servers = await startNamedServers({ echo: { mode: 'echo' }, reset: { mode: 'reset-first' } });
  const noAccept = await startServers({ mode: 'no-accept', lifetimeMs: durationMs + 120_000 });
  const noAcceptPort = /** @type {number} */ (noAccept.ports[0]);
  // Its accept queue full: every later SYN is dropped, and a connect stays pending.
  const fillers = await fillAcceptQueue('127.0.0.1', noAcceptPort);
  const targets = { ...servers.ports, refused: await refusedPort(), noAccept: noAcceptPort };
  return {
    targets,
    count: () => servers.count(),
    async stop() {
      for (const s of fillers) s.destroy();
      await Promise.all([noAccept.stop(), servers.stop()]);
    },
  };
}

/** Resolves once `socket` has closed; `onError` sees its error, if any. */
function closed(socket, onError) {
  return new Promise((resolve) => {
    socket.on('error', onError);
    if (socket.closed) resolve();
    else socket.once('close', resolve);
  });
}

/** An echo of PAYLOAD read back, then this side ends: 'ok', or what went wrong. */
async function echoed(socket) {
  let code;
  const done = closed(socket, (err) => {
    code ??= err.code ?? err.name;
  });
  let got = 0;
  socket.on('data', (chunk) => {
    got += chunk.length;
    if (got >= PAYLOAD.length) socket.end();
  });
  socket.write(PAYLOAD);
  await done;
  if (code === undefined && got !== PAYLOAD.length) code = `SHORT_ECHO_${got}`;
  return code ?? 'ok';
}

/** `socket`'s error once it closed after `act(socket)`, or `otherwise`. */
async function endsWith(socket, act, otherwise) {
  let code;
  const done = closed(socket, (err) => {
    code ??= err.code ?? err.name;
  });
  act(socket);
  await done;
  return code ?? otherwise;
}

/** A connect to the full listener, aborted after 20 ms. */
async function aborted(porter, host, port) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20);
  try {
    (await porter.connect({ host, port, signal: controller.signal })).destroy();
  } finally {
    clearTimeout(timer);
  }
  return 'CONNECTED';
}

/** One connection of `kind`; resolves to its outcome (a code, 'ok' or 'destroyed'). */
export async function one(porter, kind, targets) {
  const host = '127.0.0.1';
  try {
    switch (kind) {
      case 'ok':
        return await echoed(await porter.connect({ host, port: targets.echo, noDelay: true, timeout: 5000 }));
      case 'refused':
        (await porter.connect({ host, port: targets.refused, timeout: 5000 })).destroy();
        return 'CONNECTED';
      case 'reset': {
        const socket = await porter.connect({ host, port: targets.reset, timeout: 5000 });
        return await endsWith(socket, (s) => s.write(PAYLOAD), 'NO_RESET');
      }
      case 'timeout':
        (await porter.connect({ host, port: targets.noAccept, timeout: 100 })).destroy();
        return 'CONNECTED';
      case 'abort':
        return await aborted(porter, host, targets.noAccept);
      case 'destroy': {
        const socket = await porter.connect({ host, port: targets.echo, timeout: 5000 });
        const writeAndDestroy = (s) => {
          s.write(PAYLOAD);
          s.destroy();
        };
        return await endsWith(socket, writeAndDestroy, 'destroyed');
      }
      default:
        throw new Error(`unknown kind ${kind}`);
    }
  } catch (err) {
    return err?.code ?? err?.name ?? 'THROWN';
  }
}
