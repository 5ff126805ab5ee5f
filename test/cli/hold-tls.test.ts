import test from 'ava';
import { makeCerts } from '../helpers/certs.mjs';
import { type HoldJson, porter, requireTool } from '../helpers/cli.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';
import { startTlsServer } from '../helpers/tls-servers.js';

test('hold --tls against a local TLS server: verified with --ca, refused without it, accepted with --insecure', async (t) => {
  requireTool(t, 'openssl');
  const certs = makeCerts();
  t.teardown(() => certs.cleanup());
  const received: string[] = [];
  const server = await startTlsServer({ key: certs.server.key, cert: certs.server.cert }, (socket) => {
    socket.on('data', (d: Buffer) => received.push(d.toString()));
  });
  t.teardown(() => server.close());
  const target = `127.0.0.1:${server.port}`;
  const range = await findFreePortBlock(32);
  const common = ['hold', target, '-n', '12', '--range', `${range[0]}-${range[1]}`, '--tls', '--json'];

  const verified = await porter([...common, '--ca', certs.caFile, '--servername', 'localhost', '--send', 'hi']);
  t.is(verified.code, 0, verified.stderr);
  const ok = lastJson<HoldJson>(verified.stdout);
  t.true(ok.tls);
  t.is(ok.opened, 12);
  t.is(ok.failed, 0);
  t.deepEqual(ok.pools, [{ remote: target, local: '0.0.0.0', in_use: 12, aging: 0, free: 32 - 12 }]);
  t.is(server.accepted.length, 12, 'the server completed 12 handshakes');
  t.is(received.join(''), 'hi'.repeat(12), 'the payload went over TLS');
  t.regex(verified.stderr, /\(TLS\)/);

  // The test CA is not among the system's: every handshake fails, by OpenSSL's code.
  const unverified = await porter(common);
  t.is(unverified.code, 1, unverified.stderr);
  const bad = lastJson<HoldJson>(unverified.stdout);
  t.is(bad.opened, 0);
  t.deepEqual(bad.errors, { UNABLE_TO_VERIFY_LEAF_SIGNATURE: 12 });
  // Each failed handshake closed its connection from this side: the ports age.
  t.deepEqual(bad.pools, [{ remote: target, local: '0.0.0.0', in_use: 0, aging: 12, free: 32 - 12 }]);

  const insecure = await porter([...common, '--insecure']);
  t.is(insecure.code, 0, insecure.stderr);
  t.is(lastJson<HoldJson>(insecure.stdout).opened, 12);
});
