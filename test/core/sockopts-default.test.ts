// socketOptions given to configureDefault() are kept with the process-wide native registry:
// a worker thread's default Porter, made later around it, reports them and its sockets
// carry them (read back from the worker's descriptor, which this thread shares), and its
// leases follow lingerZeroOnClose. Other options afterwards are refused.
import { Worker } from 'node:worker_threads';
import { configureDefault } from '@porter/core';
import { findFreePortBlock } from '../helpers/ports.js';
import { testIf } from '../helpers/requirements.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown } from '../helpers/sockets.js';
import { porterSocketOptions, sockoptReaderMissing } from '../helpers/sockopts.js';

interface FromWorker {
  socketOptions: unknown;
  fd: number;
  localPort: number;
  error?: string;
}

/** A worker thread's default Porter: its socketOptions, and a connection it holds open until told. */
function workerConnection(port: number): Promise<{ worker: Worker; seen: FromWorker }> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import('@porter/core').then(async ({ connect, defaultPorter, snapshot }) => {
      const s = await connect({ host: '127.0.0.1', port: ${port} });
      parentPort.once('message', () => {
        s.once('close', () => parentPort.postMessage({ pools: snapshot() }));
        s.destroy();
      });
      parentPort.postMessage({ socketOptions: defaultPorter().options.socketOptions, fd: s._handle.fd, localPort: s.localPort });
    }).catch((e) => parentPort.postMessage({ error: e.message }));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, execArgv: [] });
    worker.once('message', (seen: FromWorker) => {
      if (seen.error) reject(new Error(seen.error));
      else resolve({ worker, seen });
    });
    worker.once('error', reject);
  });
}

testIf(sockoptReaderMissing())('socketOptions of configureDefault apply in worker threads too', async (t) => {
  const servers = await startServers();
  closeAtTeardown(t, servers);
  const port = servers.ports[0] as number;
  const [first, last] = await findFreePortBlock(4);
  const socketOptions = { userTimeoutMs: 1_234, lingerZeroOnClose: true, keepAlive: { idleMs: 17_000 } };
  configureDefault({ portRange: [first, last], kernelFallback: false, agingMs: 60_000, socketOptions });
  // The same again is harmless; other socket options are another configuration.
  t.notThrows(() =>
    configureDefault({ portRange: [first, last], kernelFallback: false, agingMs: 60_000, socketOptions }),
  );
  t.throws(
    () =>
      configureDefault({
        portRange: [first, last],
        kernelFallback: false,
        agingMs: 60_000,
        socketOptions: { ...socketOptions, userTimeoutMs: 1_235 },
      }),
    { code: 'ERR_PORTER_DEFAULT_CONFIGURED' },
  );

  const { worker, seen } = await workerConnection(port);
  t.teardown(() => worker.terminate());
  t.deepEqual(seen.socketOptions, socketOptions);
  t.like(await porterSocketOptions(seen.fd, 4), {
    userTimeoutMs: 1_234,
    keepAlive: true,
    keepIdle: 17,
    linger: { on: true, seconds: 0 },
  });
  // The worker destroys its socket: SO_LINGER zero, so its lease frees the port at once.
  const closed = new Promise<{ pools: { inUse: number[]; aging: { port: number }[] }[] }>((resolve) =>
    worker.once('message', resolve),
  );
  worker.postMessage('close');
  const { pools } = await closed;
  t.deepEqual(
    pools.map((p) => [p.inUse, p.aging]),
    [[[], []]],
  );
});
