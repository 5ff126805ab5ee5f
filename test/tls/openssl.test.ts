/**
 * An independent TLS implementation: `openssl s_server -www` answers an HTTP GET sent
 * through porter's TLS socket, then closes first, so the port is free again at once.
 */
import { once } from 'node:events';
import { Porter } from '@porter/core';
import { connect, leaseOf } from '@porter/tls';
import test from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import { type External, startOpensslServer } from '../helpers/external-servers.js';
import { inUse, portState } from '../helpers/pools.js';

let certs: Certs;
let server: External | undefined;
test.before(async () => {
  certs = makeCerts();
  server = await startOpensslServer(certs.server.certFile, certs.server.keyFile);
});
test.after.always(async () => {
  await server?.close();
  certs?.cleanup();
});

test('HTTP GET to openssl s_server through a porter TLS socket', async (t) => {
  const port = server?.ports[0] as number;
  const porter = new Porter({ agingMs: 60_000 });
  const socket = await connect({ host: 'localhost', family: 4, port, ca: certs.ca, porter, timeout: 5_000 });
  t.true(socket.authorized);
  const protocol = socket.getProtocol();
  const lease = leaseOf(socket);
  t.is(lease?.localPort, socket.localPort);
  t.is(lease?.remotePort, port);
  const closed = once(socket, 'close');
  let response = '';
  socket.on('data', (d: Buffer) => {
    response += d.toString('latin1');
  });
  socket.write('GET / HTTP/1.0\r\n\r\n');
  await closed;
  t.regex(response, /^HTTP\/1\.0 200 ok\r\n/);
  t.regex(response, /s_server/);
  t.regex(response, new RegExp(`Protocol\\s*: ${protocol}`));
  // s_server closed first: no TIME_WAIT on this side, the port is back at once.
  t.true(lease?.released);
  t.deepEqual(inUse(porter), []);
  t.is(portState(porter.snapshot(), '127.0.0.1', port, lease?.localPort as number), 'free');
});
