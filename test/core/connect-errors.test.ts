import { createServer, connect as netConnect, type Socket } from 'node:net';
import { leaseOf, Porter } from '@porter/core';
import test from 'ava';
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { fillAcceptQueue, type ServerGroup, startServers } from '../helpers/servers.mjs';
import { destroyAll } from '../helpers/sockets.js';

/** A port on 127.0.0.1 nothing listens on (listened on, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A destination whose connects stay pending: a listener whose accept queue is full. */
async function pendingDestination(): Promise<{ servers: ServerGroup; port: number; fill: Socket[] }> {
  const servers = await startServers({ mode: 'no-accept' });
  const port = servers.ports[0] as number;
  const fill = await fillAcceptQueue('127.0.0.1', port);
  return { servers, port, fill };
}

async function newPorter(size = 4): Promise<{ porter: Porter; first: number; last: number }> {
  const [first, last] = await findFreePortBlock(size);
  return { porter: new Porter({ portRange: [first, last], agingMs: 10_000, kernelFallback: false }), first, last };
}

test('ECONNREFUSED keeps the system error shape and releases the port', async (t) => {
  const port = await closedPort();
  const { porter, first, last } = await newPorter();
  const err = (await t.throwsAsync(porter.connect({ host: '127.0.0.1', port }))) as NodeJS.ErrnoException & {
    address?: string;
    port?: number;
    localAddress?: string;
    localPort?: number;
  };
  t.is(err.code, 'ECONNREFUSED');
  t.is(err.errno, -111);
  t.is(err.syscall, 'connect');
  t.is(err.address, '127.0.0.1');
  t.is(err.port, port);
  // The address the kernel used, not the pool's unspecified one.
  t.is(err.localAddress, '127.0.0.1');
  t.true((err.localPort as number) >= first && (err.localPort as number) <= last, `${err.localPort}`);
  t.is(err.message, `connect ECONNREFUSED 127.0.0.1:${port} - Local (127.0.0.1:${err.localPort})`);
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, []);
  // A reset answered the SYN: no state on either side, so the port is free at once.
  t.deepEqual(pool?.aging, []);
  t.is(porter.stats().connectErrors.ECONNREFUSED, 1);
});

test("timeout: rejects with ETIMEDOUT, not before, while the kernel's own connect still waits", async (t) => {
  const { servers, port, fill } = await pendingDestination();
  t.teardown(async () => {
    await destroyAll(fill);
    await servers.stop();
  });
  const { porter } = await newPorter();
  // A plain connect beside it, without a timeout: the kernel retries its SYN for about
  // two minutes before it gives up with ETIMEDOUT itself.
  const control = netConnect({ host: '127.0.0.1', port });
  control.on('error', () => {});
  fill.push(control);
  const started = performance.now();
  const err = (await t.throwsAsync(
    porter.connect({ host: '127.0.0.1', port, timeout: 300 }),
  )) as NodeJS.ErrnoException & {
    localPort?: number;
  };
  const elapsed = performance.now() - started;
  t.is(err.code, 'ETIMEDOUT');
  t.is(err.syscall, 'connect');
  t.true(elapsed >= 300 - 1, `timed out after ${elapsed} ms`);
  // The ETIMEDOUT is porter's: the kernel has not given up on the same destination.
  t.true(control.connecting, 'the plain connect still waits');
  const pool = poolFor(porter.snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, []);
  t.deepEqual(
    pool?.aging.map((a) => a.port),
    [err.localPort],
    'its SYN left: the port ages',
  );
});

test('timeout: 0 rejects ETIMEDOUT without hanging', async (t) => {
  const { servers, port, fill } = await pendingDestination();
  t.teardown(async () => {
    await destroyAll(fill);
    await servers.stop();
  });
  const { porter } = await newPorter();
  const err = await t.throwsAsync(porter.connect({ host: '127.0.0.1', port, timeout: 0 }));
  t.is((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, []);
});

test('AbortSignal: aborting a pending connect rejects AbortError and releases the port', async (t) => {
  const { servers, port, fill } = await pendingDestination();
  t.teardown(async () => {
    await destroyAll(fill);
    await servers.stop();
  });
  const { porter } = await newPorter();
  const controller = new AbortController();
  const pending = porter.connect({ host: '127.0.0.1', port, signal: controller.signal });
  // While it waits, the port is in use; then abort.
  while ((poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.length ?? 0) === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  t.is(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.length, 1);
  controller.abort();
  const err = (await t.throwsAsync(pending)) as Error & { code?: string };
  t.is(err.name, 'AbortError');
  t.is(err.code, 'ABORT_ERR');
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, []);
});

test('AbortSignal.timeout() aborts a pending connect', async (t) => {
  const { servers, port, fill } = await pendingDestination();
  t.teardown(async () => {
    await destroyAll(fill);
    await servers.stop();
  });
  const { porter } = await newPorter();
  const err = (await t.throwsAsync(
    porter.connect({ host: '127.0.0.1', port, signal: AbortSignal.timeout(100) }),
  )) as Error & {
    code?: string;
  };
  t.is(err.name, 'AbortError');
  t.is(err.code, 'ABORT_ERR');
  t.deepEqual(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse, []);
});

test('an already-aborted signal rejects without taking a port', async (t) => {
  const servers = await startServers();
  t.teardown(() => servers.stop());
  const port = servers.ports[0] as number;
  const { porter } = await newPorter();
  const before = porter.stats().allocations;
  const reason = new Error('stop');
  const err = (await t.throwsAsync(
    porter.connect({ host: '127.0.0.1', port, signal: AbortSignal.abort(reason) }),
  )) as Error & {
    code?: string;
  };
  t.is(err.name, 'AbortError');
  t.is(err.code, 'ABORT_ERR');
  t.is(err.cause, reason);
  t.is(porter.stats().allocations, before);
  t.is(poolFor(porter.snapshot(), '127.0.0.1', port)?.inUse.length ?? 0, 0);
});

test('an abort after the connect destroys the socket with an AbortError, as net does', async (t) => {
  const servers = await startServers();
  const { porter, first, last } = await newPorter();
  const controller = new AbortController();
  const socket = await porter.connect({
    host: '127.0.0.1',
    port: servers.ports[0] as number,
    signal: controller.signal,
    timeout: 5_000,
  });
  t.teardown(async () => {
    await destroyAll([socket]);
    await servers.stop();
  });
  t.is(leaseOf(socket)?.localPort, socket.localPort);
  t.true((socket.localPort as number) >= first && (socket.localPort as number) <= last);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(socket.destroyed, 'a signal that does not abort leaves the socket alone');
  const errored = new Promise<Error>((resolve) => socket.once('error', resolve));
  controller.abort();
  const err = await errored;
  t.is(err.name, 'AbortError');
  t.true(socket.destroyed);
  await new Promise((resolve) => socket.once('close', resolve));
  t.true(leaseOf(socket)?.released);
});
