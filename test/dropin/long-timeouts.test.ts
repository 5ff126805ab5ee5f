// A timeout longer than a Node timer holds (2^31-1 ms, about 24.8 days) works in every
// entry point that takes one: a deadline (porter.connect, @porter/tls's connect, the
// undici connector) is waited out in several timers, an idle timeout (createConnection,
// the Agents) beyond that is none. Node's own timer would fire after a millisecond with a
// TimeoutOverflowWarning: the connector failed every connect with
// UND_ERR_CONNECT_TIMEOUT, and the sockets of createConnection and the Agents emitted
// 'timeout' at once. Each case checks that no such warning came and that nothing timed
// out before a 50 ms timer set once connected fired (it would have, after the 1 ms).
import { once } from 'node:events';
import { createServer as createHttpServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Agent as HttpAgent, Porter } from '@porter/core';
import * as porterTls from '@porter/tls';
import test, { type ExecutionContext } from 'ava';
import { request, Agent as UndiciAgent } from 'undici';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { findFreePortBlock } from '../helpers/ports.js';
import { delay } from '../helpers/wait.js';

/** Longer than a Node timer holds. */
const LONG = 3e9;

let certs: Certs;
let plain: Server;
let secure: Server;
let porter: Porter;
const port = (s: Server): number => (s.address() as AddressInfo).port;
const answer = (_req: IncomingMessage, res: import('node:http').ServerResponse): void => {
  res.end('ok');
};

test.before(async () => {
  certs = makeCerts();
  plain = createHttpServer(answer);
  secure = createHttpsServer({ key: certs.server.key, cert: certs.server.cert }, answer);
  for (const s of [plain, secure]) {
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
  }
  const [first, last] = await findFreePortBlock(32);
  porter = new Porter({ portRange: [first, last], kernelFallback: false });
});
test.after.always(async () => {
  for (const s of [plain, secure]) {
    s?.closeAllConnections();
    s?.close();
  }
  porter?.close();
  certs?.cleanup();
});

const tlsOptions = () => ({ ca: certs.ca, servername: 'localhost' });

/** Runs `body` while collecting TimeoutOverflowWarnings; none may come. */
async function withoutOverflow(t: ExecutionContext, body: () => Promise<void>): Promise<void> {
  const overflows: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'TimeoutOverflowWarning') overflows.push(w.message);
  };
  process.on('warning', onWarning);
  try {
    await body();
    // Warnings are emitted on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  t.deepEqual(overflows, []);
}

/** Resolves with whether `socket` emitted 'timeout' or closed before a 50 ms timer set now fired. */
async function quietFor50ms(socket: Socket): Promise<{ timedOut: boolean; closed: boolean }> {
  let timedOut = false;
  socket.once('timeout', () => {
    timedOut = true;
  });
  await delay(50);
  return { timedOut, closed: socket.destroyed };
}

test.serial('porter.connect and @porter/tls connect: a deadline beyond 2^31-1 ms', async (t) => {
  await withoutOverflow(t, async () => {
    const tcp = await porter.connect({ host: '127.0.0.1', port: port(plain), timeout: LONG });
    const secured = await porterTls.connect({
      host: '127.0.0.1',
      port: port(secure),
      timeout: LONG,
      porter,
      ...tlsOptions(),
    });
    t.true(secured.authorized);
    t.deepEqual(await quietFor50ms(secured), { timedOut: false, closed: false });
    tcp.destroy();
    secured.destroy();
  });
});

test.serial('createConnection of @porter/core and @porter/tls: an idle timeout beyond 2^31-1 ms', async (t) => {
  await withoutOverflow(t, async () => {
    const tcp = porter.createConnection({ host: '127.0.0.1', port: port(plain), timeout: LONG });
    await once(tcp, 'connect');
    const secured = porterTls.createConnection({
      host: '127.0.0.1',
      port: port(secure),
      timeout: LONG,
      porter,
      ...tlsOptions(),
    });
    await once(secured, 'secureConnect');
    const [a, b] = await Promise.all([quietFor50ms(tcp), quietFor50ms(secured)]);
    t.deepEqual(a, { timedOut: false, closed: false });
    t.deepEqual(b, { timedOut: false, closed: false });
    tcp.destroy();
    secured.destroy();
  });
});

test.serial('the Agents: an idle timeout beyond 2^31-1 ms on a kept-alive socket', async (t) => {
  await withoutOverflow(t, async () => {
    const agents = [
      { agent: new HttpAgent({ porter, keepAlive: true, timeout: LONG }), get: httpGet, server: plain },
      {
        agent: new porterTls.Agent({ porter, keepAlive: true, timeout: LONG, ...tlsOptions() }),
        get: httpsGet,
        server: secure,
      },
    ];
    for (const { agent, get, server } of agents) {
      // Back in the Agent's free list once answered, where Node's Agent sets its idle timeout.
      const freed = once(agent, 'free') as Promise<[Socket]>;
      const req = get({ host: '127.0.0.1', port: port(server), agent });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.resume();
      const [socket] = await freed;
      t.deepEqual(await quietFor50ms(socket), { timedOut: false, closed: false });
      agent.destroy();
    }
  });
});

test.serial("undici through porter's connector: a connect timeout beyond 2^31-1 ms", async (t) => {
  await withoutOverflow(t, async () => {
    const dispatcher = new UndiciAgent({ connect: porterTls.connector({ porter, timeout: LONG, ...tlsOptions() }) });
    for (const [scheme, server] of [
      ['http', plain],
      ['https', secure],
    ] as const) {
      const res = await request(`${scheme}://127.0.0.1:${port(server)}/`, { dispatcher });
      t.is(await res.body.text(), 'ok', scheme);
    }
    await dispatcher.close();
  });
});
