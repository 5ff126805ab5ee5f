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
import { poolFor } from '../helpers/pools.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { destroyAll } from '../helpers/sockets.js';

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
  const options = { portRange: [first, last] as [number, number], agingMs: 60_000, kernelFallback: false };
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

  // Which port the pool hands out first is its business: each step checks which ports
  // are taken, not their order.
  const range = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  const sorted = (ports: number[]): number[] => [...ports].sort((a, b) => a - b);
  const inUseHere = (): number[] | undefined => poolFor(snapshot(), '127.0.0.1', port)?.inUse;

  // A lease taken in the worker shows in the main thread's snapshot.
  const fromWorker = (await worker.call('allocate', dest)).localPort as number;
  t.true(range.includes(fromWorker), `${fromWorker}`);
  t.deepEqual(inUseHere(), [fromWorker]);

  // And one taken in the main thread shows in the worker's; the worker's port is not reused.
  const mine = allocate(dest);
  leases.push(mine);
  t.true(range.includes(mine.localPort));
  t.not(mine.localPort, fromWorker);
  t.deepEqual(
    poolFor((await worker.call('snapshot')).snapshot ?? [], '127.0.0.1', port)?.inUse,
    sorted([fromWorker, mine.localPort]),
  );

  // Connections through the module-level connect, from both threads, share the pool too.
  const viaWorker = await worker.call('connect', { host: '127.0.0.1', port });
  const workerSocketPort = viaWorker.localPort as number;
  t.true(range.includes(workerSocketPort));
  t.false([fromWorker, mine.localPort].includes(workerSocketPort));
  t.is(viaWorker.lease, workerSocketPort);
  const socket = await connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  // The one port left.
  t.deepEqual(
    [socket.localPort],
    range.filter((p) => ![fromWorker, mine.localPort, workerSocketPort].includes(p)),
  );
  t.deepEqual(inUseHere(), range);
  // The range is used up for everyone.
  t.throws(() => allocate(dest), { code: 'ERR_PORTER_EXHAUSTED' });
  await t.throwsAsync(worker.call('allocate', dest), { code: 'ERR_PORTER_EXHAUSTED' });

  // Released in the worker: free in the main thread at once (aging: false)...
  t.deepEqual((await worker.call('release', { aging: false })).released, [true]);
  t.deepEqual(inUseHere(), sorted([mine.localPort, workerSocketPort, socket.localPort as number]));
  // ...and a socket the worker closes first ages its port, seen from here.
  t.is((await worker.call('close')).closed, 1);
  const pool = poolFor(snapshot(), '127.0.0.1', port);
  t.deepEqual(pool?.inUse, sorted([mine.localPort, socket.localPort as number]));
  t.deepEqual(
    pool?.aging.map((a) => a.port),
    [workerSocketPort],
  );
});
