import { Worker } from 'node:worker_threads';
import { configureDefault, connect } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { closeAtTeardown } from '../helpers/sockets.js';

/** Connects through the default instance from a fresh worker thread; its local address. */
function connectFromWorker(port: number): Promise<{ address: string; port: number }> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import('@porter/core').then(async ({ connect }) => {
      const s = await connect({ host: '127.0.0.1', port: ${port} });
      parentPort.postMessage({ address: s.localAddress, port: s.localPort });
      s.destroy();
    }).catch((e) => parentPort.postMessage({ error: e.message }));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, execArgv: [] });
    worker.once('message', (m: { address: string; port: number; error?: string }) => {
      void worker.terminate();
      if (m.error) reject(new Error(m.error));
      else resolve(m);
    });
    worker.once('error', reject);
  });
}

// configureDefault() stores its options (source addresses included) with the native
// registry, so a worker thread's default Porter, built later around the same registry,
// connects from the same addresses and takes ports from the same pools.
test('localAddresses given to configureDefault apply in worker threads too', async (t) => {
  const servers = await startServers();
  const [first, last] = await findFreePortBlock(4, ['127.0.0.2']);
  configureDefault({ portRange: [first, last], localAddresses: ['127.0.0.2'], kernelFallback: false });
  const port = servers.ports[0] as number;
  const sockets = closeAtTeardown(t, servers);
  const mine = await connect({ host: '127.0.0.1', port });
  sockets.push(mine);
  t.is(mine.localAddress, '127.0.0.2');
  const theirs = await connectFromWorker(port);
  t.is(theirs.address, '127.0.0.2');
  // The same pool as the main thread's: another port of the range than the one in use.
  t.true(theirs.port >= first && theirs.port <= last, `${theirs.port}`);
  t.not(theirs.port, mine.localPort);
});
