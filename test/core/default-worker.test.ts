import type { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import {
  allocate,
  configureDefault,
  connect,
  defaultPorter,
  type Lease,
  type PoolSnapshot,
  snapshot,
} from '@porter/core';
import test from 'ava';
import { destroyAll, findFreePortBlock, startServers } from '../helpers/servers.js';
import { poolFor } from '../helpers/snapshot.js';

interface Reply {
  localPort?: number;
  lease?: number;
  released?: boolean[];
  closed?: number;
  snapshot?: PoolSnapshot[];
  configured?: boolean;
}

/** A worker thread running fixtures/default-worker.mjs, with a request/answer helper. */
function startWorker(): { call: (op: string, args?: object) => Promise<Reply>; stop: () => Promise<number> } {
  // The fixture is plain JavaScript: no loader needed in the worker.
  const worker = new Worker(new URL('./fixtures/default-worker.mjs', import.meta.url), { execArgv: [] });
  let next = 0;
  const waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  worker.on('message', (msg: { id: number; result?: Reply; error?: { code?: string; message: string } }) => {
    const w = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error) w?.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
    else w?.resolve(msg.result as Reply);
  });
  worker.on('error', (e) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  });
  return {
    call: (op, args = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        worker.postMessage({ id, op, ...args });
      }),
    stop: () => worker.terminate(),
  };
}

// One test: the default instance is per process, so the steps share it in order.
test('the default instance is one registry for the main thread and a worker thread', async (t) => {
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(4);
  const options = { portRange: [first, last] as [number, number], agingMs: 300, kernelFallback: false };
  const porter = configureDefault(options);
  t.is(defaultPorter(), porter);
  const worker = startWorker();
  const sockets: Socket[] = [];
  const leases: Lease[] = [];
  t.teardown(async () => {
    await destroyAll(sockets);
    for (const l of leases) l.release({ aging: false });
    await worker.stop();
    await servers.stop();
  });
  const port = servers.ports[0] as number;
  const dest = { address: '127.0.0.1', port };

  // Configuring again with the same options is harmless, from any thread; other options fail.
  t.is((await worker.call('configure', { options })).configured, true);
  await t.throwsAsync(worker.call('configure', { options: { ...options, agingMs: 1 } }), {
    code: 'ERR_PORTER_DEFAULT_CONFIGURED',
  });
  t.throws(() => configureDefault({ ...options, agingMs: 1 }), { code: 'ERR_PORTER_DEFAULT_CONFIGURED' });

  // A lease taken in the worker shows in the main thread's snapshot.
  const fromWorker = (await worker.call('allocate', dest)).localPort as number;
  // The walk starts at a random port of the range and goes on from there, for every thread.
  const at = (i: number): number => first + ((fromWorker - first + i) % (last - first + 1));
  const sorted = (ports: number[]): number[] => [...ports].sort((a, b) => a - b);
  t.deepEqual(poolFor(snapshot(), '127.0.0.1', port)?.inUse, [at(0)]);

  // And one taken in the main thread shows in the worker's; the worker's port is not reused.
  const mine = allocate(dest);
  leases.push(mine);
  t.is(mine.localPort, at(1));
  t.deepEqual(
    poolFor((await worker.call('snapshot')).snapshot ?? [], '127.0.0.1', port)?.inUse,
    sorted([at(0), at(1)]),
  );

  // Connections through the module-level connect, from both threads, share the pool too.
  const viaWorker = await worker.call('connect', { host: '127.0.0.1', port });
  t.is(viaWorker.localPort, at(2));
  t.is(viaWorker.lease, at(2));
  const socket = await connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  t.is(socket.localPort, at(3));
  t.deepEqual(poolFor(snapshot(), '127.0.0.1', port)?.inUse, sorted([at(0), at(1), at(2), at(3)]));
  // The range is used up for everyone.
  t.throws(() => allocate(dest), { code: 'ERR_PORTER_EXHAUSTED' });
  await t.throwsAsync(worker.call('allocate', dest), { code: 'ERR_PORTER_EXHAUSTED' });

  // Released in the worker: free in the main thread at once (aging: false)...
  t.deepEqual((await worker.call('release', { aging: false })).released, [true]);
  t.deepEqual(poolFor(snapshot(), '127.0.0.1', port)?.inUse, sorted([at(1), at(2), at(3)]));
  // ...and a socket the worker closes first ages its port, seen from here.
  t.is((await worker.call('close')).closed, 1);
  const pool = poolFor(snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, sorted([at(1), at(3)]));
  t.deepEqual(
    pool?.aging.map((a) => a.port),
    [at(2)],
  );
});
